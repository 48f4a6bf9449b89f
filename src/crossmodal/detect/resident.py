"""Training images held on the training device as uint8, augmented there: the
``loader: resident`` option of the ultralytics family.

Ultralytics' own loader reads, decodes and augments every image on the CPU each epoch
(mosaic, random affine, flips), one batch at a time; on a GPU that leaves the GPU waiting
for the CPU (issue #13: per-epoch time tracked the CPU, not the GPU). Here every training
image is read once, kept on the device as one ``uint8`` tensor (N, C, S, S), and each batch
is cut from it and augmented by one batched ``grid_sample`` on the same device:

- **mosaic** (probability ``mosaic``, until ultralytics closes it ``close_mosaic`` epochs
  before the end): four images side by side on a 2S x 2S canvas, cropped back to S around a
  random centre, as ultralytics' mosaic does;
- **scale** and **translate**: one random zoom in ``1 +/- scale`` and shift in
  ``+/- translate`` of the image size, ultralytics' ``random_perspective`` without rotation,
  shear or perspective (which our defaults leave at 0);
- **flips**: left-right with probability ``fliplr``, up-down with ``flipud``;
- boxes follow the same map, are clipped to the image and dropped where less than 10 % of
  their area or under 2 pixels of side is left (ultralytics' ``box_candidates``).

Colour jitter is not applied: our channels are modalities (CT, PET, fused), and the
defaults switch ultralytics' hue and saturation jitter off for that reason
(:data:`~crossmodal.detect.ultralytics_trainer.ULTRALYTICS_DEFAULTS`); value jitter is
left out too. Validation keeps ultralytics' loader.

The same code runs on the CPU (the tests) and on a GPU; the random draws come from a NumPy
generator seeded from the run's seed and the epoch, so two runs with one seed see the same
batches on any device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "LOADERS",
    "ResidentLoader",
    "augment_batch",
    "draw_augmentation",
    "resident_trainer",
]

#: Values of the ultralytics-family option ``loader``: ultralytics' own loader (CPU
#: workers, the default) or :class:`ResidentLoader`.
LOADERS = ("ultralytics", "resident")

#: Pixel value outside the image after a shift or zoom out (ultralytics' letterbox grey).
PAD_VALUE = 114.0


def draw_augmentation(rng: np.random.Generator, n: int, *, mosaic: float, scale: float,
                      translate: float, fliplr: float, flipud: float) -> dict[str, np.ndarray]:
    """Random parameters for ``n`` augmented images, in one place so that a test can fix them.

    Returns arrays of length ``n``: ``mosaic`` (bool), ``zoom`` (> 0), ``centre`` (n, 2)
    as a fraction of the source (image or mosaic canvas) size, ``flip`` (n, 2) of +/-1
    for x and y.
    """
    use_mosaic = rng.random(n) < mosaic
    zoom = rng.uniform(1.0 - scale, 1.0 + scale, n)
    # Mosaic: the crop's centre anywhere in the canvas's middle half (ultralytics draws the
    # tiles' meeting point in [S/2, 3S/2]); otherwise the image's centre shifted.
    shift = rng.uniform(-translate, translate, (n, 2))
    meeting = rng.uniform(0.25, 0.75, (n, 2))
    centre = np.where(use_mosaic[:, None], meeting, 0.5 + shift)
    flip = np.stack([np.where(rng.random(n) < fliplr, -1.0, 1.0),
                     np.where(rng.random(n) < flipud, -1.0, 1.0)], axis=1)
    return {"mosaic": use_mosaic, "zoom": np.maximum(zoom, 1e-3), "centre": centre, "flip": flip}


def _source_boxes(boxes: list[np.ndarray], tiles: np.ndarray, use_mosaic: bool, size: int) -> np.ndarray:
    """Pixel ``x0, y0, x1, y1, class`` boxes of one source (an image, or a 2 x 2 mosaic canvas
    of four images in reading order)."""
    parts = []
    for position, index in enumerate(tiles if use_mosaic else tiles[:1]):
        b = boxes[index]
        if not len(b):
            continue
        cls, cx, cy, w, h = b[:, 0], b[:, 1] * size, b[:, 2] * size, b[:, 3] * size, b[:, 4] * size
        dx, dy = (position % 2) * size, (position // 2) * size
        parts.append(np.column_stack([cx - w / 2 + dx, cy - h / 2 + dy, cx + w / 2 + dx, cy + h / 2 + dy, cls]))
    return np.concatenate(parts) if parts else np.zeros((0, 5))


def _map_boxes(boxes: np.ndarray, *, source: int, size: int, zoom: float, centre: np.ndarray,
               flip: np.ndarray) -> np.ndarray:
    """Source-pixel boxes -> output-pixel boxes (normalised ``class, cx, cy, w, h``), clipped,
    with the boxes that do not survive the crop dropped."""
    if not len(boxes):
        return np.zeros((0, 5))
    c = centre * source
    x = (boxes[:, [0, 2]] - c[0]) * zoom * flip[0] + size / 2
    y = (boxes[:, [1, 3]] - c[1]) * zoom * flip[1] + size / 2
    x0, x1 = np.sort(x, axis=1).T
    y0, y1 = np.sort(y, axis=1).T
    w0, h0 = x1 - x0, y1 - y0
    x0, x1, y0, y1 = (np.clip(v, 0, size) for v in (x0, x1, y0, y1))
    w, h = x1 - x0, y1 - y0
    keep = (w > 2) & (h > 2) & (w * h > 0.1 * w0 * h0)
    out = np.column_stack([boxes[:, 4], (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, w / size, h / size])
    return out[keep]


def augment_batch(images, boxes: list[np.ndarray], picks: np.ndarray, params: dict[str, np.ndarray]):
    """One augmented batch, on the images' device.

    Parameters
    ----------
    images : torch.Tensor
        (N, C, S, S) uint8, every training image.
    boxes : list of (n_i, 5) arrays
        Normalised ``class, cx, cy, w, h`` per image.
    picks : (B, 4) int array
        Image indices per output: the first alone, or all four for a mosaic.
    params : dict
        From :func:`draw_augmentation` for B images.

    Returns
    -------
    images : torch.Tensor
        (B, C, S, S) uint8.
    boxes : list of (m_i, 5) arrays
        Normalised ``class, cx, cy, w, h`` per output image.
    """
    import torch
    import torch.nn.functional as F

    size = images.shape[-1]
    device = images.device
    # Every output is sampled from a 2S x 2S canvas: the four tiles of a mosaic, or the image
    # in the top-left tile with pad grey around it. A batch without a mosaic (every batch once
    # ultralytics closes mosaic) samples the S x S images alone: the same map, a quarter of
    # the work. Values are offset by the grey, so that grid_sample's zero padding is grey too.
    use_mosaic = params["mosaic"]
    if use_mosaic.any():
        index = torch.as_tensor(picks, device=device, dtype=torch.long)
        tiles = images[index].float() - PAD_VALUE                  # B, 4, C, S, S
        tiles[torch.as_tensor(~use_mosaic, device=device), 1:] = 0.0
        top = torch.cat([tiles[:, 0], tiles[:, 1]], dim=-1)
        bottom = torch.cat([tiles[:, 2], tiles[:, 3]], dim=-1)
        canvas = torch.cat([top, bottom], dim=-2)                  # B, C, 2S, 2S
    else:
        canvas = images[torch.as_tensor(picks[:, 0], device=device, dtype=torch.long)].float() - PAD_VALUE
    source = np.where(use_mosaic, 2 * size, size).astype(float)     # the source's side in pixels
    # Output pixel u (continuous, 0..S) reads source pixel c + (u - S/2) / (zoom * flip);
    # in grid_sample's normalised coordinates of the canvas that is theta below.
    canvas_side = float(canvas.shape[-1])
    a = params["flip"] / params["zoom"][:, None] * size / canvas_side
    offset = 2.0 * params["centre"] * source[:, None] / canvas_side - 1.0
    theta = np.zeros((len(picks), 2, 3))
    theta[:, 0, 0], theta[:, 1, 1] = a[:, 0], a[:, 1]
    theta[:, :, 2] = offset
    theta_t = torch.as_tensor(theta, dtype=canvas.dtype, device=device)
    grid = F.affine_grid(theta_t, [len(picks), canvas.shape[1], size, size], align_corners=False)
    out = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + PAD_VALUE
    out_images = out.round_().clamp_(0, 255).to(torch.uint8)
    out_boxes = [
        _map_boxes(_source_boxes(boxes, picks[i], bool(use_mosaic[i]), size), source=int(source[i]),
                   size=size, zoom=float(params["zoom"][i]), centre=params["centre"][i], flip=params["flip"][i])
        for i in range(len(picks))
    ]
    return out_images, out_boxes


class _Sampler:
    """What ultralytics' trainer reads off a loader's sampler: its length."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:  # called under DDP only; one process here
        pass


class ResidentLoader:
    """Batches of a YOLO dataset, cut and augmented on the training device.

    Parameters
    ----------
    dataset : ultralytics.data.YOLODataset
        The training dataset ultralytics built (its labels and image reader are used once).
    batch_size : int
    device : torch.device or str
    seed : int
    hyp : namespace or mapping
        Ultralytics' arguments: ``mosaic``, ``scale``, ``translate``, ``fliplr``, ``flipud``.

    Iterating gives ultralytics' batch dictionaries (``img`` uint8 on the device,
    ``cls``, ``bboxes`` normalised ``cx, cy, w, h``, ``batch_idx``, ``im_file``,
    ``ori_shape``, ``resized_shape``); each pass over the loader is one epoch, in a fresh
    order drawn from ``seed`` and the epoch number.
    """

    num_workers = 0
    drop_last = False

    def __init__(self, dataset, batch_size: int, device, seed: int, hyp) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0
        get = hyp.get if isinstance(hyp, dict) else lambda k, d=None: getattr(hyp, k, d)
        self.augment = {k: float(get(k, 0.0) or 0.0) for k in ("mosaic", "scale", "translate", "fliplr", "flipud")}
        self.images, self.boxes = _load_all(dataset, device)
        self.sampler = _Sampler(len(self.boxes))

    def __len__(self) -> int:
        return math.ceil(len(self.boxes) / self.batch_size)

    def reset(self) -> None:
        """Ultralytics calls this after closing mosaic for the last epochs."""
        self.augment["mosaic"] = 0.0

    def close(self) -> None:
        self.images = None

    def __iter__(self):
        import torch

        n = len(self.boxes)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(n)
        size = self.images.shape[-1]
        for start in range(0, n, self.batch_size):
            first = order[start:start + self.batch_size]
            picks = np.column_stack([first, rng.integers(0, n, (len(first), 3))])
            params = draw_augmentation(rng, len(first), **self.augment)
            images, boxes = augment_batch(self.images, self.boxes, picks, params)
            counts = [len(b) for b in boxes]
            labels = np.concatenate(boxes) if sum(counts) else np.zeros((0, 5))
            yield {
                "img": images,
                "cls": torch.as_tensor(labels[:, :1], dtype=torch.float32),
                "bboxes": torch.as_tensor(labels[:, 1:], dtype=torch.float32),
                "batch_idx": torch.as_tensor(np.repeat(np.arange(len(first)), counts), dtype=torch.float32),
                "im_file": tuple(self.dataset.im_files[i] for i in first),
                "ori_shape": tuple((size, size) for _ in first),
                "resized_shape": tuple((size, size) for _ in first),
            }


def _load_all(dataset, device):
    """Every image of ``dataset`` as one (N, C, S, S) uint8 tensor on ``device`` (RGB order
    for three channels, as ultralytics' formatter gives; letterboxed to the square network
    input where an image is not square), and each image's boxes as ``class, cx, cy, w, h``."""
    import torch

    size = int(dataset.imgsz if not isinstance(dataset.imgsz, (list, tuple)) else max(dataset.imgsz))
    first, _, _ = dataset.load_image(0)
    channels = 1 if first.ndim == 2 else first.shape[2]
    images = torch.full((len(dataset.labels), channels, size, size), int(PAD_VALUE), dtype=torch.uint8, device=device)
    boxes = []
    for i, label in enumerate(dataset.labels):
        image, _, (h, w) = dataset.load_image(i)
        image = image.reshape(h, w, -1)
        if image.shape[2] == 3:
            image = image[..., ::-1]  # OpenCV's BGR -> the RGB ultralytics trains on
        top, left = (size - h) // 2, (size - w) // 2
        images[i, :, top:top + h, left:left + w] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        b = np.asarray(label["bboxes"], dtype=float).reshape(-1, 4)
        c = np.asarray(label["cls"], dtype=float).reshape(-1, 1)
        # Normalised to the image; re-normalised to the letterboxed square.
        b = b * [w / size, h / size, w / size, h / size] + [left / size, top / size, 0, 0]
        boxes.append(np.column_stack([c, b]))
    return images, boxes


def resident_trainer(base: type) -> type:
    """``base`` (an ultralytics trainer class) with its training loader replaced by
    :class:`ResidentLoader`; validation keeps ultralytics' loader."""

    class ResidentTrainer(base):
        def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train") -> Any:
            if mode != "train":
                return super().get_dataloader(dataset_path, batch_size, rank, mode)
            dataset = self.build_dataset(dataset_path, mode, batch_size)
            return ResidentLoader(dataset, batch_size, self.device, self.args.seed, self.args)

    ResidentTrainer.__name__ = ResidentTrainer.__qualname__ = f"Resident{base.__name__}"
    return ResidentTrainer

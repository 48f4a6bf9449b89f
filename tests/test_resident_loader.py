"""Training images held on the device and augmented there (crossmodal.detect.resident).

Runs on the CPU: the same code path a GPU runs (the device is the images' own).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from crossmodal.detect.resident import PAD_VALUE
from crossmodal.detect.resident import augment_batch
from crossmodal.detect.resident import draw_augmentation

S = 32


def _identity(n=1, **change):
    params = {"mosaic": np.zeros(n, bool), "zoom": np.ones(n), "centre": np.full((n, 2), 0.5),
              "flip": np.ones((n, 2))}
    params.update({k: np.asarray(v) for k, v in change.items()})
    return params


def _images(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 256, (n, 3, S, S)), dtype=torch.uint8)


def _square(image: np.ndarray, x0, y0, x1, y1, value=250):
    image[:, y0:y1, x0:x1] = value


def _bright_box(image: torch.Tensor) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(image[0].numpy() > 200)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_identity_parameters_return_the_image_and_its_boxes():
    images = _images()
    boxes = [np.array([[1, 0.5, 0.25, 0.25, 0.25]]), np.zeros((0, 5)), np.zeros((0, 5)), np.zeros((0, 5))]
    out, out_boxes = augment_batch(images, boxes, np.array([[0, 1, 2, 3]]), _identity())
    assert out.dtype == torch.uint8 and out.shape == (1, 3, S, S)
    assert torch.equal(out[0], images[0])
    np.testing.assert_allclose(out_boxes[0], boxes[0])


def test_a_left_right_flip_mirrors_image_and_boxes():
    images = _images()
    boxes = [np.array([[0, 0.25, 0.5, 0.25, 0.5]])] + [np.zeros((0, 5))] * 3
    out, out_boxes = augment_batch(images, boxes, np.array([[0, 1, 2, 3]]), _identity(flip=[[-1.0, 1.0]]))
    assert torch.equal(out[0], images[0].flip(-1))
    np.testing.assert_allclose(out_boxes[0], [[0, 0.75, 0.5, 0.25, 0.5]])


def test_a_mosaic_centred_on_the_meeting_point_shows_one_quarter_of_each_tile():
    images = _images()
    boxes = [np.zeros((0, 5))] * 4
    out, _ = augment_batch(images, boxes, np.array([[0, 1, 2, 3]]), _identity(mosaic=[True]))
    h = S // 2
    assert torch.equal(out[0, :, :h, :h], images[0, :, h:, h:])
    assert torch.equal(out[0, :, :h, h:], images[1, :, h:, :h])
    assert torch.equal(out[0, :, h:, :h], images[2, :, :h, h:])
    assert torch.equal(out[0, :, h:, h:], images[3, :, :h, :h])


def test_zooming_out_pads_with_grey_and_never_shows_the_other_tiles():
    images = torch.zeros((4, 3, S, S), dtype=torch.uint8)
    images[1:] = 255  # the tiles a single image must never show
    boxes = [np.zeros((0, 5))] * 4
    out, _ = augment_batch(images, boxes, np.array([[0, 1, 2, 3]]), _identity(zoom=[0.5]))
    image = out[0, 0].numpy()
    border = np.ones((S, S), bool)
    border[S // 4:3 * S // 4, S // 4:3 * S // 4] = False  # the image, halved, in the middle
    assert np.all(image[border] == PAD_VALUE)
    assert np.all(image[~border] == 0)


def test_an_image_beside_a_mosaic_in_its_batch_is_augmented_as_alone():
    images = torch.zeros((4, 3, S, S), dtype=torch.uint8)
    images[1:] = 255  # the neighbouring tiles: in the mosaic, never in the single image
    boxes = [np.zeros((0, 5))] * 4
    picks = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    both = _identity(2, mosaic=[False, True], zoom=[0.5, 1.0], centre=[[0.5, 0.5], [0.5, 0.5]],
                     flip=[[1.0, 1.0], [1.0, 1.0]])
    mixed, _ = augment_batch(images, boxes, picks, both)
    alone, _ = augment_batch(images, boxes, picks[:1], _identity(zoom=[0.5]))
    assert torch.equal(mixed[0], alone[0])
    assert (mixed[1] == 255).any()


def test_boxes_follow_the_pixels_under_random_augmentation():
    """A bright square and its box agree after every draw (to within a pixel of resampling)."""
    rng = np.random.default_rng(3)
    n = 24
    images = torch.zeros((n, 3, S, S), dtype=torch.uint8)
    boxes = []
    for i in range(n):
        x0, y0 = (int(v) for v in rng.integers(4, S - 14, 2))
        side = int(rng.integers(8, 12))
        _square(images[i].numpy(), x0, y0, x0 + side, y0 + side)
        boxes.append(np.array([[0, (x0 + side / 2) / S, (y0 + side / 2) / S, side / S, side / S]]))
    picks = np.column_stack([np.arange(n), np.zeros((n, 3), int)])
    params = draw_augmentation(rng, n, mosaic=0.0, scale=0.3, translate=0.1, fliplr=0.5, flipud=0.5)
    out, out_boxes = augment_batch(images, boxes, picks, params)
    checked = 0
    for i in range(n):
        if not len(out_boxes[i]) or out_boxes[i][0, 3] * S < 4 or out_boxes[i][0, 4] * S < 4:
            continue
        _, cx, cy, w, h = out_boxes[i][0] * [1, S, S, S, S]
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        np.testing.assert_allclose(_bright_box(out[i]), box, atol=1.5, err_msg=f"image {i}")
        checked += 1
    assert checked >= n // 2


def test_a_box_cut_almost_entirely_out_of_the_crop_is_dropped():
    images = _images()
    boxes = [np.array([[0, 0.1, 0.5, 0.2, 0.2]])] + [np.zeros((0, 5))] * 3
    # Shifted by 40 % of the image to the right: the box at x 0..0.2 leaves the crop.
    _, out_boxes = augment_batch(images, boxes, np.array([[0, 1, 2, 3]]), _identity(centre=[[0.9, 0.5]]))
    assert out_boxes[0].shape == (0, 5)


def test_the_draw_is_seeded_and_respects_each_probability():
    a = draw_augmentation(np.random.default_rng(5), 400, mosaic=1.0, scale=0.5, translate=0.1, fliplr=0.5, flipud=0.0)
    b = draw_augmentation(np.random.default_rng(5), 400, mosaic=1.0, scale=0.5, translate=0.1, fliplr=0.5, flipud=0.0)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["mosaic"].all() and np.all(a["flip"][:, 1] == 1.0)
    assert 0.35 < np.mean(a["flip"][:, 0] == -1.0) < 0.65
    assert a["zoom"].min() >= 0.5 and a["zoom"].max() <= 1.5
    none = draw_augmentation(np.random.default_rng(5), 50, mosaic=0.0, scale=0.0, translate=0.0, fliplr=0.0, flipud=0.0)
    assert not none["mosaic"].any() and np.all(none["zoom"] == 1.0) and np.all(none["centre"] == 0.5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The training tests' synthetic dataset (tests/test_detect_train.py), and ultralytics'
    config folder (one per session: ultralytics fixes it at import)."""
    from tests.test_detect_train import _synthetic_records

    from crossmodal.detect.dataset import patient_split
    from crossmodal.detect.env import configure_ultralytics
    from crossmodal.detect.export import export_yolo

    root = tmp_path_factory.mktemp("resident")
    config = configure_ultralytics(os.environ.get("YOLO_CONFIG_DIR") or root / "yolo")
    records = _synthetic_records()
    split = patient_split([r.case_id for r in records], [0] * len(records), fractions=(0.5, 0.25, 0.25), seed=0)
    return export_yolo(records, root / "export", split_of=split), config.parent


def _weights(detector):
    return torch.load(detector.weights, map_location="cpu", weights_only=False)["model"].float().state_dict()


@pytest.mark.slow
def test_a_detector_trains_on_resident_batches_deterministically(exported, tmp_path):
    from tests.test_detect_train import SIZE

    from crossmodal.detect.export import read_split
    from crossmodal.detect.train import predict
    from crossmodal.detect.train import train_detector

    data_yaml, config_dir = exported
    options = dict(epochs=2, imgsz=SIZE, batch=4, seed=3, config_dir=config_dir, close_mosaic=1)
    runs = [train_detector("yolov8", data_yaml, tmp_path / f"run{i}", loader="resident", **options)
            for i in range(2)]
    record = json.loads((runs[0].out_dir / "detector.json").read_text())
    assert record["train_args"]["loader"] == "resident" and len(record["history"]) == 2
    weights = [_weights(r) for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # Not the weights ultralytics' own loader trains: the batches really came from here.
    default = train_detector("yolov8", data_yaml, tmp_path / "default", **options)
    other = _weights(default)
    assert not all(torch.equal(weights[0][k], other[k]) for k in other)
    assert "loader" not in json.loads((default.out_dir / "detector.json").read_text())["train_args"]
    paths = [r["image_path"] for r in read_split(data_yaml.parent, "test")]
    assert len(predict(runs[0], paths)) == len(paths)


def test_an_unknown_loader_is_refused(exported, tmp_path):
    from crossmodal.detect.train import train_detector

    data_yaml, config_dir = exported
    with pytest.raises(ValueError, match="loader 'gpu'"):
        train_detector("yolov8", data_yaml, tmp_path / "run", epochs=1, imgsz=32, batch=4, seed=0,
                       config_dir=config_dir, loader="gpu")


def test_resident_batches_are_for_one_device_per_run(exported, tmp_path):
    from crossmodal.detect.train import train_detector

    data_yaml, config_dir = exported
    with pytest.raises(ValueError, match="one device.*compute.devices"):
        train_detector("yolov8", data_yaml, tmp_path / "run", epochs=1, imgsz=32, batch=4, seed=0, device="0,1",
                       config_dir=config_dir, loader="resident")

"""Early-fusion baseline: a reduced-width C3D on the modalities stacked as channels.

Topology of Tran et al. (2015), eight 3x3x3 convolutions in five blocks::

    conv1a | pool1 (1x2x2)
    conv2a | pool2 (2x2x2)
    conv3a conv3b | pool3 (2x2x2)
    conv4a conv4b | pool4 (2x2x2)
    conv5a conv5b | pool5 (2x2x2)

with channel widths ``width * (1, 2, 4, 8, 8)`` (the original is ``width = 64``). Our
changes, for small cohorts and small volumes: BatchNorm after every convolution, global
average pooling instead of flattening, and a small head (dropout, ``8w -> 4w -> 1``)
instead of fc6/fc7 (4096 units). A pool only halves an axis that is at least 2 voxels long
(rounding up), so volumes as small as ``8 x 32 x 32`` pass all five pools.

Input is ``(N, C, D, H, W)`` with ``C`` = number of modalities in a fixed order on a
common grid; a patient without a modality has that channel all zeros
(:func:`stack_modalities`). Intensities should already be scaled per modality to about
[0, 1] (as the enhancement step does), since the network sees all channels together.

References
----------
.. [1] Tran D, Bourdev L, Fergus R, Torresani L, Paluri M. Learning spatiotemporal
   features with 3D convolutional networks. ICCV 2015. :DOI:`10.1109/ICCV.2015.510`
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from crossmodal.learn.classify import finish_oof
from crossmodal.learn.classify import iter_folds

__all__ = [
    "C3D",
    "c3d_cross_validated",
    "predict_c3d",
    "stack_modalities",
    "train_c3d",
]


class _HalvingPool(nn.Module):
    """Max-pool with stride = kernel, halving only axes of length >= 2 (ceil)."""

    def __init__(self, halve_depth):
        super().__init__()
        self.halve_depth = halve_depth

    def forward(self, x):
        d, h, w = x.shape[-3:]
        kernel = (2 if (self.halve_depth and d >= 2) else 1, 2 if h >= 2 else 1, 2 if w >= 2 else 1)
        return F.max_pool3d(x, kernel_size=kernel, stride=kernel, ceil_mode=True)


def _conv(c_in, c_out):
    return [
        nn.Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    ]


class C3D(nn.Module):
    """Reduced-width C3D binary classifier returning one logit per volume.

    Parameters
    ----------
    in_channels : int
        Number of stacked modalities.
    width : int
        Channels of conv1a; later blocks use 2, 4, 8, 8 times this (C3D: 64).
    dropout : float
        Dropout before each head layer.
    """

    def __init__(self, in_channels=3, *, width=8, dropout=0.3):
        super().__init__()
        w = width
        layers = []
        layers += _conv(in_channels, w) + [_HalvingPool(halve_depth=False)]  # conv1a, pool1 1x2x2
        layers += _conv(w, 2 * w) + [_HalvingPool(halve_depth=True)]  # conv2a, pool2
        layers += (
            _conv(2 * w, 4 * w) + _conv(4 * w, 4 * w) + [_HalvingPool(halve_depth=True)]
        )  # conv3a,b
        layers += (
            _conv(4 * w, 8 * w) + _conv(8 * w, 8 * w) + [_HalvingPool(halve_depth=True)]
        )  # conv4a,b
        layers += (
            _conv(8 * w, 8 * w) + _conv(8 * w, 8 * w) + [_HalvingPool(halve_depth=True)]
        )  # conv5a,b
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(8 * w, 4 * w),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4 * w, 1),
        )

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3, 4))  # global average pooling
        return self.head(x).squeeze(1)


def stack_modalities(arrays, *, modalities, dtype=np.float32):
    """Stack one patient's modality volumes as channels, zeros for a missing one.

    Parameters
    ----------
    arrays : mapping of str to ndarray or None
        Volumes ``(D, H, W)`` on a common grid, keyed by modality; a missing key or
        ``None`` means not acquired.
    modalities : sequence of str
        Channel order.

    Returns
    -------
    volume : ndarray, shape (len(modalities), D, H, W)

    Raises
    ------
    ValueError
        If no modality is present or the present ones differ in shape.
    """
    present = {m: np.asarray(arrays[m]) for m in modalities if arrays.get(m) is not None}
    if not present:
        raise ValueError(f"none of {list(modalities)} is present")
    shapes = {m: a.shape for m, a in present.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 3:
        raise ValueError(f"modalities must share one 3-D grid, got {shapes}")
    shape = next(iter(shapes.values()))
    out = np.zeros((len(modalities), *shape), dtype=dtype)
    for c, m in enumerate(modalities):
        if m in present:
            out[c] = present[m]
    return out


def _device(device):
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def _seeded(seed, device):
    """Seed torch inside a forked RNG state and force deterministic cuDNN, then restore."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            yield


def train_c3d(
    volumes,
    y,
    train_idx=None,
    *,
    width=8,
    epochs=30,
    lr=1e-3,
    batch_size=8,
    weight_decay=1e-4,
    dropout=0.3,
    balance=True,
    augment=False,
    seed=0,
    device=None,
):
    """Train a :class:`C3D` on a subset of patients.

    Parameters
    ----------
    volumes : ndarray or Tensor, shape (N, C, D, H, W)
    y : array_like of {0, 1}, shape (N,)
    train_idx : array_like of int, optional
        Patients to train on; default all.
    width : int
        See :class:`C3D`.
    epochs, lr, batch_size, weight_decay : int, float, int, float
        AdamW settings; ``batch_size`` patients per step, shuffled every epoch.
    dropout : float
        See :class:`C3D`.
    balance : bool
        Weight positives by ``n_neg / n_pos`` in the BCE loss, so an imbalanced cohort
        does not collapse to the majority class.
    augment : bool
        Random left-right flips (axis W).
    seed : int
        Seeds initialisation, shuffling, dropout and flips. On CPU the same seed gives
        an identical model; on CUDA cuDNN is forced deterministic, but max-pool backward
        uses atomic adds, so GPU runs may differ in the last bits. The global torch RNG
        state is left untouched.
    device : str or torch.device, optional
        Default CUDA if available, else CPU.

    Returns
    -------
    model : C3D
        In eval mode on ``device``; ``model.loss_history`` holds the mean training loss
        of each epoch.
    """
    device = _device(device)
    x_all = torch.as_tensor(np.asarray(volumes), dtype=torch.float32)
    y_all = torch.as_tensor(np.asarray(y).astype(np.float32))
    idx = np.arange(len(y_all)) if train_idx is None else np.asarray(train_idx)
    x_train, y_train = x_all[idx], y_all[idx]
    losses = []
    with _seeded(seed, device):
        model = C3D(x_all.shape[1], width=width, dropout=dropout).to(device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=_positive_weight(y_train, balance, device))
        generator = torch.Generator().manual_seed(seed)  # CPU generator: same order on any device
        model.train()
        for _ in range(epochs):
            losses.append(_train_epoch(model, optimiser, loss_fn, x_train, y_train, generator,
                                       batch_size=batch_size, augment=augment, device=device))
    model.eval()
    model.loss_history = losses
    return model


def _positive_weight(y_train, balance, device):
    """BCE weight of the positives: ``n_neg / n_pos`` when balancing (and both occur), else 1."""
    n_pos = float(y_train.sum())
    n_neg = float(len(y_train) - n_pos)
    return torch.tensor(
        n_neg / n_pos if (balance and n_pos > 0 and n_neg > 0) else 1.0, device=device
    )


def _train_epoch(model, optimiser, loss_fn, x_train, y_train, generator, *, batch_size, augment,
                 device):
    """One shuffled pass over the training patients; the epoch's mean loss."""
    order = torch.randperm(len(y_train), generator=generator)
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < 2 and len(order) > 1:
            continue  # BatchNorm cannot normalise a batch of one at the pooled end
        xb = x_train[batch]
        if augment:
            flip = torch.rand(len(batch), generator=generator) < 0.5
            xb = torch.where(flip[:, None, None, None, None], xb.flip(-1), xb)
        xb, yb = xb.to(device), y_train[batch].to(device)
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * len(batch)
        seen += len(batch)
    return total / max(seen, 1)


@torch.no_grad()
def predict_c3d(model, volumes, *, batch_size=8, device=None):
    """Positive-class probabilities of a trained :class:`C3D`.

    Parameters
    ----------
    model : C3D
    volumes : ndarray or Tensor, shape (N, C, D, H, W)
    batch_size : int
    device : str or torch.device, optional
        Default: the model's device.

    Returns
    -------
    prob : ndarray of float64, shape (N,)
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    model = model.to(device).eval()
    x = torch.as_tensor(np.asarray(volumes), dtype=torch.float32)
    out = []
    for start in range(0, len(x), batch_size):
        out.append(torch.sigmoid(model(x[start : start + batch_size].to(device))).cpu())
    return torch.cat(out).double().numpy() if out else np.empty(0)


def c3d_cross_validated(volumes, y, folds, *, seed=0, device=None, jobs=1, threads=None, **train_kwargs):
    """Out-of-fold C3D probabilities on precomputed folds.

    Parameters
    ----------
    volumes : ndarray, shape (N, C, D, H, W)
    y : array_like of {0, 1}, shape (N,)
    folds : DataFrame
        :func:`crossmodal.learn.classify.fold_assignments` table, the same one the classifiers
        use, so the OOF tables can be compared patient by patient.
    seed : int
        Base seed; fold (r, f) trains with a seed derived from ``(seed, r, f)``.
    device : str or torch.device, optional
    jobs : int or 'auto'
        Folds trained side by side in their own processes; the result does not depend on it.
    threads : int, optional
        CPU threads of each fold's training (default: the process's). On the CPU the
        weights depend on it, so :mod:`crossmodal.reproducible` fixes it from the params.
    **train_kwargs
        Passed to :func:`train_c3d` (``width``, ``epochs``, ``lr``, ``batch_size``, ...).

    Returns
    -------
    oof : DataFrame
        Columns ``repeat, fold, index, case_id, y, prob`` exactly as
        :func:`crossmodal.learn.classify.cross_validated_scores`, so
        :func:`crossmodal.learn.metrics.metrics_with_ci` applies unchanged.
    """
    from crossmodal.parallel import map_jobs

    y_arr, volumes = np.asarray(y).astype(int), np.asarray(volumes)
    tasks = [(repeat, fold, train, test, int(np.random.SeedSequence([seed, repeat, fold]).generate_state(1)[0]))
             for repeat, fold, train, test in iter_folds(folds)]
    one = functools.partial(_fold_probabilities, volumes=volumes, y=y_arr, device=device, threads=threads,
                            train_kwargs=train_kwargs)
    parts = map_jobs(one, tasks, jobs=jobs)
    return finish_oof(pd.concat(parts, ignore_index=True), folds, y_arr)


def _fold_probabilities(task, *, volumes, y, device, threads, train_kwargs) -> pd.DataFrame:
    """One fold's test probabilities (module level, for :func:`crossmodal.parallel.map_jobs`)."""
    from crossmodal.reproducible import threads_for_training

    repeat, fold, train, test, fold_seed = task
    with threads_for_training(threads):
        model = train_c3d(volumes, y, train, seed=fold_seed, device=device, **train_kwargs)
        prob = predict_c3d(model, volumes[test])
    return pd.DataFrame({"repeat": repeat, "fold": fold, "index": test, "prob": prob})

"""A cheap early-fusion comparator and the sanity gate every early-fusion model must pass.

C6 compares the fused detector features with *early* fusion: a model that sees the
co-registered modalities together at its input, before any per-modality detector. C3D is
the thesis's; when it fails the sanity gate this one stands in for it:

* input: the stacked channel volumes C3D reads (:func:`crossmodal.learn.c3d_volumes.c3d_volumes`);
* features: the joint intensity histogram of the channels (every voxel's channel values
  together: ``bins ** channels`` cells, log10 of the voxel fraction), so the modalities are
  combined voxel by voxel and position does not matter (lesions are anywhere in the
  skeleton; a per-voxel linear model cannot learn that from 60 patients);
* model: L2 logistic regression on standardised features.

The sanity gate (:func:`sanity_gate`) asks a model to find what any working classifier of
these images should find: lesion presence from the PET channel alone, on the patients who
have PET, on the shared folds. A model whose AUC CI there does not clear ``auc_ci_low``
(0.5: chance) is not a comparator: "fused beats it" would measure nothing.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["histogram_model", "joint_histogram", "sanity_gate"]


def joint_histogram(volumes, *, bins: int = 8) -> np.ndarray:
    """log10 voxel fraction in each cell of the channels' joint histogram on [0, 1].

    Parameters
    ----------
    volumes : ndarray, shape (n, channels, D, H, W)
        Channels scaled to about [0, 1]; values outside are clipped into the end bins.
    bins : int
        Equal-width bins per channel.

    Returns
    -------
    ndarray, shape (n, bins ** channels)
    """
    volumes = np.asarray(volumes, dtype=float)
    n, channels = volumes.shape[:2]
    flat = np.clip(volumes.reshape(n, channels, -1), 0.0, 1.0)
    index = np.minimum((flat * bins).astype(int), bins - 1)  # (n, channels, voxels)
    cell = np.zeros(index.shape[::2], dtype=int)
    for c in range(channels):  # row-major cell number of each voxel
        cell = cell * bins + index[:, c]
    counts = np.stack([np.bincount(row, minlength=bins ** channels) for row in cell])
    # log: lesions are a tiny share of the voxels; the floor keeps empty cells finite
    return np.log10(counts / flat.shape[2] + 1e-6)


def histogram_model(*, C: float = 1.0, seed: int = 0) -> Pipeline:
    """Standardised L2 logistic regression (the comparator's classifier)."""
    return Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=C, max_iter=5000, random_state=seed))])


def sanity_gate(model: str, auc_row, *, threshold: float, task: str, patients: int) -> dict:
    """One gate row: ``passed`` when the AUC CI lower bound is above ``threshold``.

    ``auc_row``: the ``auc`` row of :func:`crossmodal.learn.metrics.metrics_with_ci`.
    """
    low = float(auc_row["ci_low"])
    return {"model": model, "task": task, "patients": int(patients),
            "auc": float(auc_row["estimate"]), "ci_low": low, "ci_high": float(auc_row["ci_high"]),
            "threshold": float(threshold), "passed": bool(np.isfinite(low) and low > threshold)}

"""The leakage rule of Part 2: no patient's features from a detector that saw that patient.

``cross_fit`` splits the patients into K label-stratified folds and scores fold k with the
detector trained on the other folds; ``holdout`` trains one detector on a disjoint subset
and scores (and classifies) only the remaining patients.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crossmodal.detect.dataset import patient_split

__all__ = ["assign_detectors", "fit_split", "nested_subsets"]


def assign_detectors(case_ids, labels, *, leakage: str, n_folds: int = 3,
                     holdout_fraction: float = 0.4, seed: int = 0) -> pd.DataFrame:
    """Which detector scores each patient, and which detectors may train on it.

    Parameters
    ----------
    case_ids, labels : sequences
        Patients and their labels (the split is stratified by label).
    leakage : {"cross_fit", "holdout"}
        ``cross_fit``: K label-stratified patient folds; detector k trains on every fold
        but k and scores fold k, so every patient is scored exactly once, by a detector
        that never saw it. ``holdout``: one detector trains on a ``holdout_fraction`` of
        the patients and scores the rest; only those are classified.
    n_folds, holdout_fraction, seed
        As above; ``seed`` seeds the patient split.

    Returns
    -------
    DataFrame
        ``case_id, detector, role`` with role ``fit`` (may train detector) or ``scored``;
        one row per patient per detector. The train / validation split of the ``fit``
        patients is drawn per modality later (:func:`fit_split`).
    """
    case_ids = list(case_ids)
    labels = list(labels)
    if leakage == "cross_fit":
        if n_folds < 2:
            raise ValueError(f"cross_fit needs n_folds >= 2, got {n_folds}")
        names = [f"d{k}" for k in range(n_folds)]
        fold_of = patient_split(case_ids, labels, fractions=[1.0] * n_folds, seed=seed, names=names)
        rows = [{"case_id": c, "detector": d, "role": "scored" if fold_of[c] == d else "fit"}
                for c in case_ids for d in names]
    elif leakage == "holdout":
        if not 0 < holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        part = patient_split(case_ids, labels, fractions=[holdout_fraction, 1 - holdout_fraction],
                             seed=seed, names=["fit", "scored"])
        rows = [{"case_id": c, "detector": "d0", "role": part[c]} for c in case_ids]
    else:
        raise ValueError(f"part2_detect.leakage must be 'cross_fit' or 'holdout', not {leakage!r}")
    return pd.DataFrame(rows)


def fit_split(fit_cases: list[str], labels: Mapping[str, int], *, val_fraction: float,
              seed: int) -> dict[str, str]:
    """Train / validation split of a detector's fit patients (stratified, seeded)."""
    if len(fit_cases) < 2 or val_fraction <= 0:
        return {c: "train" for c in fit_cases}
    return patient_split(fit_cases, [labels[c] for c in fit_cases],
                         fractions=[1 - val_fraction, val_fraction, 0.0], seed=seed)


def nested_subsets(cases: list[str], labels: Mapping[str, int], fractions, *,
                   seed: int) -> dict[float, list[str]]:
    """Label-stratified, nested patient subsets for a learning curve: ``{fraction: cases}``.

    Each label's patients are shuffled once (``seed``) and the first ``ceil(fraction * n)``
    of each label are taken, so a smaller subset lies inside every larger one and the
    curve measures more patients, not different ones.
    """
    rng = np.random.default_rng(int(seed))
    order: dict[int, list[str]] = {}
    for label in sorted({int(labels[c]) for c in cases}):
        group = sorted(c for c in cases if int(labels[c]) == label)
        order[label] = [group[i] for i in rng.permutation(len(group))]
    return {float(f): sorted(c for group in order.values()
                             for c in group[:int(np.ceil(float(f) * len(group)))])
            for f in fractions}

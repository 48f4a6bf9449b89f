"""Confidence-bin featurisation of per-modality detections (Part 2, step 3).

A per-modality detector (YOLO) returns boxes with a confidence. For each imaging series we
count the detections whose confidence falls in each of 8 equal bins on [0.2, 1.0] and
normalise the counts, either by the number of slices in the series or by the series' total
number of detections. The patient's cross-modal vector is the concatenation of the CT, MRI
and PET vectors (24 values) plus one presence flag per modality (3 values).

Column naming is fixed so every later stage can rely on it::

    CT_b0 .. CT_b7, MRI_b0 .. MRI_b7, PET_b0 .. PET_b7, has_CT, has_MRI, has_PET

Bin convention: bins are half-open ``[e_i, e_{i+1})`` except the last, which is closed
``[e_7, e_8]``. A detection at exactly ``low`` (0.2) is in the first bin, one at exactly
``high`` (1.0) in the last; anything below ``low`` or above ``high`` is not counted.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "bin_counts",
    "confidence_bins",
    "feature_columns",
    "modality_mask",
    "patient_feature_table",
    "series_features",
]

_BIN_COLUMN = re.compile(r"^(?P<modality>.+)_b(?P<bin>\d+)$")


def confidence_bins(*, low=0.2, high=1.0, n_bins=8):
    """Equal-width confidence bin edges.

    Parameters
    ----------
    low, high : float
        Range of confidences that are counted. ``low`` is the detector's prediction
        threshold (0.2 in the thesis), ``high`` the largest possible confidence.
    n_bins : int
        Number of bins.

    Returns
    -------
    edges : ndarray of shape (n_bins + 1,)
        Increasing edges; ``edges[0] == low`` and ``edges[-1] == high`` exactly, and
        interior edges rounded to 12 decimals (0.3, not 0.30000000000000004).

    Examples
    --------
    >>> confidence_bins(n_bins=4)
    array([0.2, 0.4, 0.6, 0.8, 1. ])
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not low < high:
        raise ValueError(f"need low < high, got low={low}, high={high}")
    # round so interior edges are the decimals one writes: linspace gives
    # 0.30000000000000004, which would put a confidence of exactly 0.3 in the lower bin
    edges = np.round(np.linspace(low, high, n_bins + 1), 12)
    edges[0], edges[-1] = low, high
    return edges


def bin_counts(confidences, *, edges):
    """Count detections per confidence bin.

    Parameters
    ----------
    confidences : array_like of float
        Detection confidences of one series (any shape; flattened).
    edges : array_like of float
        Increasing bin edges, e.g. from :func:`confidence_bins`.

    Returns
    -------
    counts : ndarray of int64, shape (len(edges) - 1,)

    Notes
    -----
    Bins are ``[e_i, e_{i+1})`` with the last bin closed on the right, so a detection at
    exactly ``edges[0]`` lands in bin 0 and one at exactly ``edges[-1]`` in the last bin.
    Values outside ``[edges[0], edges[-1]]`` and NaNs are ignored.

    Examples
    --------
    >>> bin_counts([0.1999, 0.2, 0.55, 1.0], edges=confidence_bins())
    array([1, 0, 0, 1, 0, 0, 0, 1])
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a 1-D strictly increasing array of length >= 2")
    values = np.asarray(confidences, dtype=float).ravel()
    values = values[np.isfinite(values)]
    n_bins = edges.size - 1
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = n_bins - 1  # close the last bin on the right
    idx = idx[(idx >= 0) & (idx < n_bins)]
    return np.bincount(idx, minlength=n_bins).astype(np.int64)


def series_features(confidences, n_slices, *, normalise="slices", edges=None):
    """Normalised confidence-bin vector of one series.

    Parameters
    ----------
    confidences : array_like of float
        Detection confidences of the series.
    n_slices : int
        Number of slices the detector was run on (used when ``normalise="slices"``).
    normalise : {"slices", "total"}
        ``"slices"``: counts divided by ``n_slices`` (detections per slice);
        ``"total"``: counts divided by the number of counted detections, i.e. the
        confidence histogram as a distribution. A series without any counted detection
        gives zeros in both modes.
    edges : array_like, optional
        Bin edges; default :func:`confidence_bins` with its defaults.

    Returns
    -------
    features : ndarray of float64, shape (len(edges) - 1,)
    """
    edges = confidence_bins() if edges is None else edges
    counts = bin_counts(confidences, edges=edges).astype(float)
    if normalise == "slices":
        if not n_slices > 0:
            raise ValueError(f"n_slices must be positive, got {n_slices}")
        return counts / float(n_slices)
    if normalise == "total":
        total = counts.sum()
        # an empty series is "no evidence", not a division error
        return counts / total if total > 0 else counts
    raise ValueError(f"normalise must be 'slices' or 'total', got {normalise!r}")


def patient_feature_table(
    detections,
    series,
    *,
    modalities,
    normalise="slices",
    presence_flags=True,
    edges=None,
):
    """One cross-modal feature row per patient.

    Parameters
    ----------
    detections : DataFrame
        Columns ``case_id``, ``modality``, ``score`` (the detection confidence); one row per detection (all
        slices of the series). Rows of modalities not in ``modalities`` are ignored.
    series : DataFrame
        Columns ``case_id``, ``modality``, ``n_slices``; one row per acquired series.
        It defines which patients exist and which modalities each one has.
    modalities : sequence of str
        Modality display names, in column order (``cohort.<name>.modality_names``).
    normalise : {"slices", "total"}
        See :func:`series_features`.
    presence_flags : bool
        Append ``has_<modality>`` columns (int 0/1).
    edges : array_like, optional
        Bin edges; default :func:`confidence_bins`.

    Returns
    -------
    table : DataFrame
        Index ``case_id`` (sorted), columns ``<modality>_b<k>`` (float) for every
        modality, then ``has_<modality>`` when ``presence_flags``. A missing modality gives
        zeros and flag 0; a modality acquired but without detections gives zeros and
        flag 1, so the flag is what tells "not imaged" from "imaged, nothing found".

    Raises
    ------
    ValueError
        On a duplicated (case, modality) series (aggregate multi-series modalities before
        calling), on detections of a series that is not in ``series``, or on missing columns.
    """
    edges = confidence_bins() if edges is None else np.asarray(edges, dtype=float)
    n_bins = len(edges) - 1
    modalities = tuple(modalities)
    _require_columns(detections, ("case_id", "modality", "score"), "detections")
    _require_columns(series, ("case_id", "modality", "n_slices"), "series")

    # every patient in ``series`` gets a row, even one imaged only outside ``modalities``
    case_ids = sorted(pd.unique(series["case_id"]).tolist())
    series = series[series["modality"].isin(modalities)]
    detections = detections[detections["modality"].isin(modalities)]
    _check_series(detections, series)

    columns = [f"{m}_b{k}" for m in modalities for k in range(n_bins)]
    values = np.zeros((len(case_ids), len(columns)))
    flags = np.zeros((len(case_ids), len(modalities)), dtype=np.int64)
    row_of = {case: i for i, case in enumerate(case_ids)}
    grouped = {
        key: grp["score"].to_numpy()
        for key, grp in detections.groupby(["case_id", "modality"])
    }
    for case, modality, n_slices in series[["case_id", "modality", "n_slices"]].itertuples(
        index=False
    ):
        j = modalities.index(modality)
        conf = grouped.get((case, modality), np.empty(0))
        values[row_of[case], j * n_bins : (j + 1) * n_bins] = series_features(
            conf, n_slices, normalise=normalise, edges=edges
        )
        flags[row_of[case], j] = 1

    index = pd.Index(case_ids, name="case_id")
    table = pd.DataFrame(values, index=index, columns=columns)
    if presence_flags:
        for j, m in enumerate(modalities):
            table[f"has_{m}"] = flags[:, j]
    return table


def feature_columns(table, feature_set):
    """Columns of ``table`` that make up a feature set.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`patient_feature_table`.
    feature_set : str
        A modality name (``"CT"``, ``"MRI"``, ``"PET"``) or ``"fused"``.

    Returns
    -------
    columns : list of str
        Single modality: that modality's bin columns only (8). ``"fused"``: every bin
        column in table order followed by every ``has_*`` flag present (24 + 3 = 27 with
        the defaults).

    Notes
    -----
    Single-modality sets leave the presence flag out on purpose: they are evaluated on the
    patients who have that modality (see :func:`modality_mask`), where the flag is the
    constant 1, and on all patients the flag would tell the classifier which scans were
    ordered, which is not image evidence from that modality. In the fused set the flags
    are what separates "not imaged" from "imaged, nothing detected".
    """
    bins = [c for c in table.columns if _BIN_COLUMN.match(str(c))]
    if feature_set == "fused":
        flags = [c for c in table.columns if str(c).startswith("has_")]
        return bins + flags
    cols = [c for c in bins if _BIN_COLUMN.match(str(c)).group("modality") == feature_set]
    if not cols:
        known = sorted({_BIN_COLUMN.match(str(c)).group("modality") for c in bins})
        raise ValueError(f"unknown feature set {feature_set!r}; expected 'fused' or one of {known}")
    return cols


def modality_mask(table, feature_sets):
    """Patients who have every modality a feature set (or list of sets) needs.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`patient_feature_table` with presence flags.
    feature_sets : str or sequence of str
        E.g. ``"PET"``, or ``["fused", "PET"]`` for a paired comparison. ``"fused"``
        needs nothing (it is defined for every patient).

    Returns
    -------
    mask : Series of bool, indexed like ``table``.
    """
    if isinstance(feature_sets, str):
        feature_sets = [feature_sets]
    mask = pd.Series(True, index=table.index)
    for fs in feature_sets:
        if fs == "fused":
            continue
        flag = f"has_{fs}"
        if flag not in table.columns:
            raise ValueError(f"{flag!r} not in table; build it with presence_flags=True")
        mask &= table[flag].astype(bool)
    return mask


def _check_series(detections, series):
    """One series per (case, modality), and no detection of a series not in ``series``."""
    duplicated = series.duplicated(["case_id", "modality"])
    if duplicated.any():
        dup = series.loc[duplicated, ["case_id", "modality"]].drop_duplicates()
        raise ValueError(f"more than one series per (case_id, modality): {dup.values.tolist()[:5]}")
    known = pd.MultiIndex.from_frame(series[["case_id", "modality"]])
    seen = pd.MultiIndex.from_frame(detections[["case_id", "modality"]])
    orphan = ~seen.isin(known)
    if orphan.any():
        bad = sorted(set(seen[orphan].tolist()))[:5]
        raise ValueError(f"detections for series missing from the series table: {bad}")


def _require_columns(frame, columns, name):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")

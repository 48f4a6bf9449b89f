"""Confidence-bin featurisation: bin edges, normalisation, missing modalities."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from crossmodal.learn.features import bin_counts
from crossmodal.learn.features import confidence_bins
from crossmodal.learn.features import feature_columns
from crossmodal.learn.features import modality_mask
from crossmodal.learn.features import patient_feature_table
from crossmodal.learn.features import series_features
from crossmodal.report.skeleton.classifiers import feature_heatmap

EDGES = confidence_bins()
MODALITIES = ("CT", "MRI", "PET")


def test_default_edges_are_eight_equal_bins_on_0p2_1():
    assert EDGES.shape == (9,)
    assert EDGES[0] == 0.2 and EDGES[-1] == 1.0
    np.testing.assert_allclose(np.diff(EDGES), 0.1)


def test_boundaries_low_high_and_just_below():
    counts = bin_counts([0.2, 1.0, 0.1999, 0.0, 0.2000001, 0.9999], edges=EDGES)
    # 0.2 and 0.2000001 -> bin 0; 1.0 and 0.9999 -> bin 7; 0.1999 and 0.0 nowhere
    np.testing.assert_array_equal(counts, [2, 0, 0, 0, 0, 0, 0, 2])
    assert counts.sum() == 4


def test_hand_made_detections_each_bin():
    # one detection in the middle of every bin, plus two extra in bin 3
    conf = [0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 0.51, 0.59]
    np.testing.assert_array_equal(bin_counts(conf, edges=EDGES), [1, 1, 1, 3, 1, 1, 1, 1])


def test_interior_edge_goes_to_upper_bin():
    # 0.3 and 0.7 written as decimals are edges and open their bins
    np.testing.assert_array_equal(bin_counts([0.3, 0.7], edges=EDGES), [0, 1, 0, 0, 0, 1, 0, 0])
    edges = confidence_bins(low=0.0, high=1.0, n_bins=4)
    np.testing.assert_array_equal(bin_counts([0.25, 0.5, 0.75], edges=edges), [0, 1, 1, 1])


def test_nan_and_empty():
    np.testing.assert_array_equal(bin_counts([], edges=EDGES), np.zeros(8, int))
    np.testing.assert_array_equal(bin_counts([np.nan, 0.3], edges=EDGES), [0, 1, 0, 0, 0, 0, 0, 0])


def test_bad_edges_rejected():
    with pytest.raises(ValueError):
        bin_counts([0.5], edges=[0.2, 0.2, 1.0])
    with pytest.raises(ValueError):
        confidence_bins(low=1.0, high=0.2)


def test_normalise_by_slices():
    conf = [0.25, 0.25, 0.95, 0.1]
    f = series_features(conf, 10, normalise="slices", edges=EDGES)
    np.testing.assert_allclose(f, [0.2, 0, 0, 0, 0, 0, 0, 0.1])


def test_normalise_by_total_sums_to_one_and_is_zero_safe():
    conf = [0.25, 0.25, 0.95, 0.1]  # 0.1 is not counted, so the total is 3
    f = series_features(conf, 10, normalise="total", edges=EDGES)
    np.testing.assert_allclose(f, [2 / 3, 0, 0, 0, 0, 0, 0, 1 / 3])
    assert f.sum() == pytest.approx(1.0)
    empty = series_features([0.05], 10, normalise="total", edges=EDGES)
    np.testing.assert_array_equal(empty, np.zeros(8))
    assert np.all(np.isfinite(empty))


def test_normalise_errors():
    with pytest.raises(ValueError):
        series_features([0.5], 0, normalise="slices")
    with pytest.raises(ValueError):
        series_features([0.5], 5, normalise="mean")


@pytest.fixture
def cohort():
    # p1: CT+MRI+PET; p2: CT only; p3: PET acquired but no detection, MRI with detections
    series = pd.DataFrame(
        {
            "case_id": ["p1", "p1", "p1", "p2", "p3", "p3"],
            "modality": ["CT", "MRI", "PET", "CT", "PET", "MRI"],
            "n_slices": [10, 20, 5, 4, 8, 10],
        }
    )
    detections = pd.DataFrame(
        {
            "case_id": ["p1", "p1", "p1", "p1", "p2", "p3", "p3"],
            "modality": ["CT", "CT", "MRI", "PET", "CT", "MRI", "MRI"],
            "score": [0.2, 1.0, 0.55, 0.95, 0.1999, 0.3, 0.31],
        }
    )
    return detections, series


def test_patient_table_layout_and_values(cohort):
    detections, series = cohort
    table = patient_feature_table(detections, series, modalities=MODALITIES)
    assert list(table.index) == ["p1", "p2", "p3"]
    assert table.index.name == "case_id"
    expected_cols = [f"{m}_b{k}" for m in ("CT", "MRI", "PET") for k in range(8)] + [
        "has_CT",
        "has_MRI",
        "has_PET",
    ]
    assert list(table.columns) == expected_cols
    # p1 CT: 0.2 -> b0, 1.0 -> b7, 10 slices
    assert table.loc["p1", "CT_b0"] == pytest.approx(0.1)
    assert table.loc["p1", "CT_b7"] == pytest.approx(0.1)
    assert table.loc["p1", "MRI_b3"] == pytest.approx(1 / 20)
    assert table.loc["p1", "PET_b7"] == pytest.approx(1 / 5)
    assert table.loc["p1", ["has_CT", "has_MRI", "has_PET"]].tolist() == [1, 1, 1]
    # p2: CT acquired, its only detection is below 0.2 -> zeros but flag 1; MRI/PET missing
    assert table.loc["p2", feature_columns(table, "CT")].sum() == 0
    assert table.loc["p2", ["has_CT", "has_MRI", "has_PET"]].tolist() == [1, 0, 0]
    assert table.loc["p2", feature_columns(table, "MRI") + feature_columns(table, "PET")].sum() == 0
    # p3: PET acquired with no detections -> zeros, flag 1; CT missing -> zeros, flag 0
    assert table.loc["p3", feature_columns(table, "PET")].sum() == 0
    assert table.loc["p3", ["has_CT", "has_MRI", "has_PET"]].tolist() == [0, 1, 1]
    assert table.loc["p3", "MRI_b1"] == pytest.approx(2 / 10)


def test_patient_table_total_normalisation(cohort):
    detections, series = cohort
    table = patient_feature_table(detections, series, modalities=MODALITIES, normalise="total")
    for case, modality in [("p1", "CT"), ("p1", "MRI"), ("p1", "PET"), ("p3", "MRI")]:
        assert table.loc[case, feature_columns(table, modality)].sum() == pytest.approx(1.0)
    assert table.loc["p3", feature_columns(table, "PET")].sum() == 0


def test_feature_sets(cohort):
    detections, series = cohort
    table = patient_feature_table(detections, series, modalities=MODALITIES)
    fused = feature_columns(table, "fused")
    assert len(fused) == 27
    assert fused[-3:] == ["has_CT", "has_MRI", "has_PET"]
    for m in ("CT", "MRI", "PET"):
        cols = feature_columns(table, m)
        assert cols == [f"{m}_b{k}" for k in range(8)]
    no_flags = patient_feature_table(detections, series, modalities=MODALITIES, presence_flags=False)
    assert len(feature_columns(no_flags, "fused")) == 24
    with pytest.raises(ValueError):
        feature_columns(table, "SPECT")


def test_modality_mask(cohort):
    detections, series = cohort
    table = patient_feature_table(detections, series, modalities=MODALITIES)
    assert modality_mask(table, "PET").tolist() == [True, False, True]
    assert modality_mask(table, ["fused", "MRI"]).tolist() == [True, False, True]
    assert modality_mask(table, "fused").all()


def test_duplicate_series_and_orphan_detections_rejected(cohort):
    detections, series = cohort
    with pytest.raises(ValueError, match="more than one series"):
        patient_feature_table(detections, pd.concat([series, series.iloc[:1]]), modalities=MODALITIES)
    orphan = pd.concat(
        [detections, pd.DataFrame({"case_id": ["p2"], "modality": ["PET"], "score": [0.9]})]
    )
    with pytest.raises(ValueError, match="missing from the series"):
        patient_feature_table(orphan, series, modalities=MODALITIES)


def test_heatmap_returns_figure(cohort):
    detections, series = cohort
    table = patient_feature_table(detections, series, modalities=MODALITIES)
    labels = pd.Series([1, 0, 1], index=["p3", "p2", "p1"])  # aligned by index, any order
    for kind in ("patients", "mean"):
        fig = feature_heatmap(table, labels, kind=kind)
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 2  # image + colour bar
    with pytest.raises(ValueError):
        feature_heatmap(table, [0, 1])

"""Part 2 stage logic on small hand-made inputs: images to detector slices, the leakage
rule, features with missing modalities, shared folds, classifiers, C3D volumes, claims.

The stages on the real (quick-profile) artifacts are checked in test_pipeline_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from crossmodal.detect.leakage import assign_detectors
from crossmodal.detect.leakage import fit_split
from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.leakage import nested_subsets
from crossmodal.detect.series_slices import crop_tile
from crossmodal.detect.series_slices import series_slices
from crossmodal.detect.series_slices import tile_origin
from crossmodal.detect.series_slices import training_tiles
from crossmodal.imaging.channels import body_box
from crossmodal.imaging.channels import channel_stack
from crossmodal.imaging.grid import common_grid
from crossmodal.io.case import Case
from crossmodal.learn.c3d_volumes import c3d_volumes
from crossmodal.learn.classify import fold_assignments
from crossmodal.learn.metrics_json import write_dvc_metrics
from crossmodal.learn.patients import series_table
from crossmodal.report.skeleton.claims import choices_table
from crossmodal.report.skeleton.cohort import cohort_table
from crossmodal.stages.skeleton import classify as classify_stage
from crossmodal.stages.skeleton import features as features_stage
from crossmodal.stages.skeleton.classify import feature_set_folds
from crossmodal.stages.skeleton.classify import unfit_reason
from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import verdict

from conftest import REPO

NAMES = {"CT": "CT", "MR": "MRI", "PT": "PET"}
COHORT = {"modalities": ["CT", "MR", "PT"], "modality_names": NAMES}


def run_features(detect_dir, out, features, *, cv):
    """The features stage on a folder holding both ``series.csv`` and ``detections.csv``."""
    params = {"features": features, "classify": {"cv": cv}, "cohort": {"skeleton": COHORT}}
    return features_stage.run(params, datasets_dir=detect_dir, runs_dir=detect_dir, out=out)


def image(array, spacing=(2.0, 2.0, 4.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def label_like(array, ref: sitk.Image) -> sitk.Image:
    lab = sitk.GetImageFromArray(np.asarray(array, dtype=np.uint8))
    lab.CopyInformation(ref)
    return lab


def make_case(case_id, y, modalities=("CT", "MR", "PT"), lesion=True) -> Case:
    images, labels = {}, {}
    for code in modalities:
        arr = np.full((6, 20, 20), {"CT": -1000.0, "MR": 0.0, "PT": 0.0}[code], np.float32)
        arr[:, 4:16, 3:17] = {"CT": 40.0, "MR": 500.0, "PT": 1.0}[code]  # the body
        lab = np.zeros(arr.shape, np.uint8)
        if lesion and y:
            lab[2:4, 8:11, 9:12] = 1
            arr[2:4, 8:11, 9:12] = {"CT": 700.0, "MR": 100.0, "PT": 6.0}[code]
        images[code] = image(arr)
        labels[code] = label_like(lab, images[code])
    return Case(case_id=case_id, patient=case_id, images=images, labels=labels,
                truth={"patient_label": int(y)})


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("seed", range(5))
def test_tile_origin_holds_the_box_and_stays_inside_the_slice(seed):
    rng = np.random.default_rng(seed)
    for box in ([10.0, 12.0, 22.0, 20.0], [0.0, 0.0, 6.0, 5.0], [90.0, 60.0, 100.0, 64.0]):
        for _ in range(20):
            y0, x0 = tile_origin((64, 100), 32, rng, box=np.array(box))
            assert 0 <= y0 <= 64 - 32 and 0 <= x0 <= 100 - 32
            assert x0 <= box[0] and box[2] <= x0 + 32 and y0 <= box[1] and box[3] <= y0 + 32
    # a box larger than the tile: the tile is centred on it
    assert tile_origin((64, 100), 16, rng, box=np.array([20.0, 10.0, 60.0, 50.0])) == (22, 32)
    # no box: the tile's centre lies in the content region (pad_y, pad_x, height, width)
    for _ in range(20):
        y0, x0 = tile_origin((64, 100), 16, rng, region=(10, 30, 20, 40))
        assert 10 <= y0 + 8 <= 30 and 30 <= x0 + 8 <= 70


def test_crop_tile_moves_boxes_and_drops_those_mostly_outside():
    record = SliceRecord(case_id="a", z=3, image=np.arange(64 * 64 * 3, dtype=float).reshape(64, 64, 3),
                         boxes=np.array([[10.0, 10.0, 20.0, 20.0], [28.0, 2.0, 34.0, 10.0],
                                         [30.0, 30.0, 40.0, 40.0], [0.0, 0.0, 8.0, 8.0]]),
                         lesion_ids=[1, 2, 3, 4])
    tile = crop_tile(record, 4, 4, 30, index=2)
    assert tile.image.shape == (30, 30, 3) and tile.image[0, 0, 0] == record.image[4, 4, 0]
    # box 1 inside; box 2 three quarters inside (rows 4..10 of 2..10): kept, cut at the border;
    # box 3 4 x 4 of 10 x 10 and box 4 4 x 4 of 8 x 8 inside: dropped
    np.testing.assert_allclose(tile.boxes, [[6.0, 6.0, 16.0, 16.0], [24.0, 0.0, 30.0, 6.0]])
    assert tile.lesion_array().tolist() == [1, 2] and tile.extra["tile"] == 2 and tile.z == 3
    # a lesion larger than the tile: the tile is centred on it, and it stays a box (the anchor)
    big = SliceRecord(case_id="a", z=0, image=record.image, boxes=np.array([[10.0, 10.0, 40.0, 40.0]]),
                      lesion_ids=[7])
    assert len(crop_tile(big, 17, 17, 16, index=0).boxes) == 0
    np.testing.assert_allclose(crop_tile(big, 17, 17, 16, index=0, anchor=0).boxes, [[0.0, 0.0, 16.0, 16.0]])


def test_training_tiles_give_one_tile_per_box_and_one_per_lesion_free_slice():
    image = np.zeros((64, 96, 3))
    records = [SliceRecord(case_id="a", z=0, image=image, boxes=np.array([[5.0, 5.0, 15.0, 15.0],
                                                                          [70.0, 40.0, 90.0, 60.0]]),
                           lesion_ids=[1, 2], extra={"content": (0, 0, 64, 96)}),
               SliceRecord(case_id="a", z=1, image=image, boxes=np.zeros((0, 4)),
                           extra={"content": (8, 0, 48, 96)})]
    tiles = list(training_tiles(records, 32, np.random.default_rng(0)))
    assert [(t.z, t.extra["tile"]) for t in tiles] == [(0, 0), (0, 1), (1, 0)]
    assert all(t.image.shape == (32, 32, 3) for t in tiles)
    assert tiles[0].lesion_array().tolist() == [1] and tiles[1].lesion_array().tolist() == [2]
    assert len(tiles[2].boxes) == 0


def test_body_box_largest_component_leaves_the_couch_out():
    """CT with a couch under the body, separated by a strip of air: 'all' spans the couch,
    'largest' the body only."""
    ct = np.full((4, 40, 50), -1000.0)
    ct[:, 5:25, 10:40] = 40.0    # body, rows 5..24
    ct[:, 27:30, 0:50] = 300.0   # couch across the whole field of view, 2 rows of air above
    channels = channel_stack(ct, {"windows": [[-400, 1200]]})
    assert body_box(channels, threshold=0.2, margin=0) == (5, 30, 0, 50)
    assert body_box(channels, threshold=0.2, margin=0, component="largest") == (5, 25, 10, 40)
    with pytest.raises(ValueError, match="largest"):
        body_box(channels, threshold=0.2, margin=0, component="biggest")


def test_body_box_leaves_the_phantom_couch_out():
    """On the skeletal phantom's own CT (quick grid): the couch spans the field of view,
    the body does not; the largest-component crop stops above the couch."""
    from crossmodal.params import load_params
    from crossmodal.phantom.skeleton import simulate_skeletal_patient

    p = load_params(REPO / "params.yaml", "quick")["phantom"]["skeleton"]
    patient = next(simulate_skeletal_patient(i, p, seed=int(p["seed"])) for i in range(12)
                   if "CT" in simulate_skeletal_patient(i, p, seed=int(p["seed"])).images)
    ct = sitk.GetArrayFromImage(patient.images["CT"])
    channels = channel_stack(ct, {"windows": [[-400, 1200]]})
    y0, y1, x0, x1 = body_box(channels, threshold=0.2, margin=0, component="largest")
    all_y0, all_y1, all_x0, all_x1 = body_box(channels, threshold=0.2, margin=0)
    assert (all_x0, all_x1) == (0, ct.shape[2])  # the couch spans the field of view
    assert y1 < all_y1 and x1 - x0 < ct.shape[2]
    couch_rows = np.flatnonzero((ct.max(axis=0) > 250).all(axis=1))  # rows dense across the FOV
    assert len(couch_rows) and y1 <= couch_rows.min()


def test_nested_subsets_are_nested_and_stratified():
    cases = [f"c{i:02d}" for i in range(20)]
    labels = {c: int(i < 8) for i, c in enumerate(cases)}
    subsets = nested_subsets(cases, labels, [0.25, 0.5, 1.0], seed=3)
    assert set(subsets[0.25]) <= set(subsets[0.5]) <= set(subsets[1.0]) == set(cases)
    assert sum(labels[c] for c in subsets[0.25]) == 2 and len(subsets[0.25]) == 2 + 3
    assert nested_subsets(cases, labels, [0.5], seed=3)[0.5] == subsets[0.5]
    assert nested_subsets(cases, labels, [0.5], seed=4)[0.5] != subsets[0.5]


def test_channel_stack_windows_and_percentile_scaling():
    ct = np.array([[[-1000.0, 0.0, 1000.0]]])
    out = channel_stack(ct, {"windows": [[-1000, 1000], [0, 500]]})
    assert out.shape == (1, 1, 3, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, :, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(out[0, 0, :, 1], [0.0, 0.0, 1.0])
    mr = np.linspace(0, 2000, 101)[None, None, :]
    scaled = channel_stack(mr, {"scale": "percentile", "percentile": 50.0, "windows": [[0, 2]]})
    assert scaled[0, 0, 50, 0] == pytest.approx(0.5)  # the median maps to 1, then window /2


def test_series_slices_crop_to_body_and_box_the_lesion():
    case = make_case("a", 1)
    spec = {"windows": [[-400, 1200]] * 3, "body_threshold": 0.2, "margin": 0}
    records = list(series_slices(case, "CT", spec, size=32))
    assert len(records) == 6
    assert all(r.image.shape == (32, 32, 3) for r in records)
    lesion = [r for r in records if len(r.boxes)]
    assert [r.z for r in lesion] == [2, 3]
    # body box: rows 4..16, cols 3..17 -> 14 px wide -> scale 32/14; lesion cols 9..12, rows 8..11
    scale = 32 / 14
    pad_y = (32 - round(12 * scale)) // 2
    x0, y0, x1, y1 = lesion[0].boxes[0]
    assert x0 == pytest.approx((9 - 3) * scale, abs=0.01) and x1 == pytest.approx((12 - 3) * scale, abs=0.01)
    assert y0 == pytest.approx((8 - 4) * scale + pad_y, abs=0.6)
    assert lesion[0].extra["mm_per_px"] == pytest.approx(2.0 / scale)  # 2 mm pixels magnified
    rect = list(series_slices(case, "CT", spec, size=(32, 48), zs=[2]))[0]
    assert rect.image.shape == (32, 48, 3)


def test_cohort_and_series_tables_count_modalities():
    cases = [make_case("a", 1), make_case("b", 0, ("MR",)), make_case("c", 1, ("CT", "PT"))]
    series = series_table(cases, names=NAMES)
    assert len(series) == 6 and set(series["modality"]) == {"CT", "MRI", "PET"}
    assert series.loc[series["case_id"] == "a", "lesion_slices"].tolist() == [2, 2, 2]
    table = cohort_table(series)
    assert table.loc["CT", "patients"] == 2 and table.loc["MRI", "negative"] == 1
    assert table.loc["any", "patients"] == 3 and table.loc["any", "positive"] == 2
    assert table.attrs["modalities_per_patient"] == {1: 1, 2: 1, 3: 1}


# ----------------------------------------------------------------------------- leakage rule


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cross_fit_scores_every_patient_once_by_a_detector_that_did_not_fit_it(k):
    ids = [f"p{i:02d}" for i in range(23)]
    y = [i % 2 for i in range(23)]
    a = assign_detectors(ids, y, leakage="cross_fit", n_folds=k, seed=1)
    scored = a[a["role"] == "scored"]
    assert sorted(scored["case_id"]) == ids  # each patient scored exactly once
    assert set(a["detector"]) == {f"d{i}" for i in range(k)}
    both = scored.merge(a[a["role"] == "fit"], on=["case_id", "detector"])
    assert both.empty
    # folds of nearly equal size, labels spread over them
    per_fold = scored.assign(y=scored["case_id"].map(dict(zip(ids, y)))).groupby("detector")["y"]
    assert per_fold.size().max() - per_fold.size().min() <= 1
    assert per_fold.sum().max() - per_fold.sum().min() <= 2


def test_holdout_scores_only_patients_outside_the_detector_training_set():
    ids = [f"p{i:02d}" for i in range(30)]
    y = [i % 2 for i in range(30)]
    a = assign_detectors(ids, y, leakage="holdout", holdout_fraction=0.4, seed=2)
    fit, scored = set(a.loc[a["role"] == "fit", "case_id"]), set(a.loc[a["role"] == "scored", "case_id"])
    assert not fit & scored and fit | scored == set(ids)
    assert len(fit) == 12
    split = fit_split(sorted(fit), dict(zip(ids, y)), val_fraction=0.25, seed=0)
    assert set(split) == fit and set(split.values()) == {"train", "val"}
    with pytest.raises(ValueError):
        assign_detectors(ids, y, leakage="none")


# ----------------------------------------------------------------------------- features


def _detect_dir(tmp_path, *, with_pet=True):
    """A hand-made detect stage output: 3 patients, one with MRI only."""
    d = tmp_path / "detect"
    d.mkdir()
    series = pd.DataFrame([
        ("a", "CT", 10, "d0", 1), ("a", "MRI", 8, "d0", 1), ("a", "PET", 5, "d0", 1),
        ("b", "MRI", 8, "d1", 0),
        ("c", "CT", 10, "d1", 1), ("c", "PET", 5, "d1", 1),
    ], columns=["case_id", "modality", "n_slices", "detector", "y"])
    if not with_pet:
        series = series[series["modality"] != "PET"]
    detections = pd.DataFrame([
        ("CT", "d0", "a", 1, 0.95), ("CT", "d0", "a", 2, 0.1), ("MRI", "d0", "a", 3, 0.2),
        ("MRI", "d1", "b", 0, 0.45), ("CT", "d1", "c", 4, 1.0),
    ], columns=["modality", "detector", "case_id", "z", "score"])
    series.to_csv(d / "series.csv", index=False)
    detections.to_csv(d / "detections.csv", index=False)
    return d


FEATURES = {"conf": 0.2, "high": 1.0, "n_bins": 8, "normalise": "slices", "presence_flags": True}


def test_features_give_zeros_and_a_zero_flag_for_a_missing_modality(tmp_path):
    tables = run_features(_detect_dir(tmp_path), tmp_path / "features", FEATURES,
                          cv={"n_splits": 2, "n_repeats": 2, "seed": 0})
    table = pd.read_csv(tmp_path / "features" / "features.csv", index_col="case_id")
    pd.testing.assert_frame_equal(table, tables["features"], check_dtype=False)
    assert list(table.index) == ["a", "b", "c"]
    b = table.loc["b"]
    assert b[[f"CT_b{k}" for k in range(8)]].eq(0).all() and b["has_CT"] == 0
    assert b[[f"PET_b{k}" for k in range(8)]].eq(0).all() and b["has_PET"] == 0
    assert b["has_MRI"] == 1 and b["MRI_b2"] == pytest.approx(1 / 8)  # 0.45 in [0.4, 0.5)
    a = table.loc["a"]
    assert a["CT_b7"] == pytest.approx(1 / 10) and a[[f"CT_b{k}" for k in range(7)]].sum() == 0
    assert a["MRI_b0"] == pytest.approx(1 / 8)  # exactly 0.2 counts, in the first bin
    assert a["has_PET"] == 1 and a[[f"PET_b{k}" for k in range(8)]].sum() == 0  # imaged, nothing found
    assert table.loc["c", "CT_b7"] == pytest.approx(1 / 10)  # exactly 1.0: last bin
    assert table["y"].tolist() == [1, 0, 1]
    assert (tables["detections"]["score"] >= 0.2).all() and len(tables["detections"]) == 4
    folds = pd.read_csv(tmp_path / "features" / "folds.csv")
    assert set(folds["case_id"]) == {"a", "b", "c"} and folds["repeat"].nunique() == 2


def test_feature_set_folds_keep_each_patients_test_fold():
    ids = np.array([f"p{i}" for i in range(12)])
    folds = fold_assignments(np.arange(12) % 2, n_splits=3, n_repeats=2, seed=0, case_ids=ids)
    subset = ids[[1, 2, 5, 7, 8, 11]]
    sub = feature_set_folds(folds, subset)
    assert len(sub) == 2 * len(subset)
    for _, row in sub.iterrows():
        assert subset[row["index"]] == row["case_id"]
        original = folds[(folds["repeat"] == row["repeat"]) & (folds["case_id"] == row["case_id"])]
        assert original["fold"].item() == row["fold"]


# ----------------------------------------------------------------------------- classifiers


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    """60 patients: PET informative, CT weakly, MRI missing for everyone but 1 patient."""
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 2
    ids = [f"p{i:02d}" for i in range(n)]
    table = pd.DataFrame(index=pd.Index(ids, name="case_id"))
    for name, signal in (("CT", 0.3), ("MRI", 0.0), ("PET", 1.5)):
        for k in range(8):
            table[f"{name}_b{k}"] = rng.normal(0, 1, n) + signal * y * (k > 4)
    has = {"CT": np.arange(n) % 3 != 0, "MRI": np.arange(n) == 5, "PET": np.ones(n, bool)}
    for name in ("CT", "MRI", "PET"):
        table.loc[~has[name], [f"{name}_b{k}" for k in range(8)]] = 0.0
    for name in ("CT", "MRI", "PET"):
        table[f"has_{name}"] = has[name].astype(int)
    table["y"] = y
    root = tmp_path_factory.mktemp("classify")
    (root / "features").mkdir()
    table.to_csv(root / "features" / "features.csv")
    fold_assignments(table["y"], n_splits=4, n_repeats=2, seed=3).to_csv(
        root / "features" / "folds.csv", index=False)
    cfg = {"classifiers": ["logistic_regression", "naive_bayes", "lda"],
           "cv": {"n_splits": 4, "n_repeats": 2, "seed": 3}, "n_boot": 200, "ci": 0.95, "boot_seed": 1,
           "threshold": 0.5, "nested": {"inner_splits": 2, "n_repeats": 1}}
    tables = classify_stage.run({"classify": cfg, "cohort": {"skeleton": COHORT}, "compute": {"jobs": 1}},
                                features_dir=root / "features", out=root / "classify",
                                metrics=root / "metrics.json")
    return root, tables


def test_classify_scores_single_sets_on_their_own_patients_and_compares_on_shared(classified):
    root, tables = classified
    oof = tables["oof"]
    counts = oof.groupby(["classifier", "feature_set"])["case_id"].nunique().unstack()
    assert (counts["fused"] == 60).all() and (counts["PET"] == 60).all() and (counts["CT"] == 40).all()
    assert "MRI" not in counts  # one patient: skipped, with a reason
    skipped = tables["skipped"]
    assert set(skipped["feature_set"]) == {"MRI", "MRI (MRI)", "fused (MRI)"}
    assert skipped["reason"].str.contains("one class").all()
    m = tables["metrics"].set_index(["classifier", "feature_set", "metric"])
    assert m.loc[("logistic_regression", "PET", "auc"), "estimate"] > 0.75
    assert m.loc[("logistic_regression", "PET", "auc"), "ci_low"] < m.loc[
        ("logistic_regression", "PET", "auc"), "estimate"]
    comp = tables["comparisons"]
    ct = comp[(comp["single"] == "CT") & (comp["metric"] == "auc")]
    assert set(ct["classifier"]) == {"logistic_regression", "naive_bayes", "lda",
                                     "mean over classifiers"}
    assert (ct["n"] == 40).all()  # shared patients only
    mean = ct[ct["classifier"] == "mean over classifiers"].iloc[0]
    per = ct[ct["classifier"] != "mean over classifiers"]
    assert mean["estimate"] == pytest.approx(per["estimate"].mean())
    assert mean["estimate"] > 0  # PET in the fused set beats weak CT
    delong = tables["delong"]
    assert len(delong) == 6 and delong["p_value"].between(0, 1).all()
    assert (delong.loc[delong["single"] == "CT", "n"] == 40).all()
    assert {"fpr", "tpr", "threshold"} <= set(tables["roc"].columns)
    for name in ("oof", "metrics", "comparisons", "delong", "roc", "pr", "skipped"):
        assert (root / "classify" / f"{name}.csv").exists()


def test_the_metrics_json_holds_each_model_s_estimates(classified, tmp_path):
    import json

    root, tables = classified
    summary = write_dvc_metrics(tables, tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved == summary == json.loads((root / "metrics.json").read_text())
    assert set(saved["fused"]) == {"logistic_regression", "naive_bayes", "lda"}
    assert set(saved["fused_minus_single"]) == {"CT", "PET"}


def testunfit_reason():
    folds = fold_assignments(np.array([0, 0, 1, 1]), n_splits=2, n_repeats=1, seed=0,
                             case_ids=np.arange(4))
    assert unfit_reason(np.array([0, 0, 1, 1]), folds) is None
    assert "one class" in unfit_reason(np.array([1, 1, 1, 1]), folds)
    assert "no patient" in unfit_reason(np.array([]), folds.iloc[:0])


# ----------------------------------------------------------------------------- C3D input


def test_common_grid_keeps_the_physical_box():
    ref = image(np.zeros((10, 30, 40)), spacing=(1.0, 2.0, 3.0), origin=(5.0, -7.0, 2.0))
    grid = common_grid(ref, (20, 15, 5))
    assert grid.GetSize() == (20, 15, 5)
    np.testing.assert_allclose(grid.GetSpacing(), (2.0, 4.0, 6.0))

    def corner(img):
        return np.asarray(img.GetOrigin()) - np.asarray(img.GetSpacing()) / 2

    np.testing.assert_allclose(corner(grid), corner(ref))
    far = np.asarray(grid.GetOrigin()) + (np.asarray(grid.GetSize()) - 0.5) * grid.GetSpacing()
    np.testing.assert_allclose(far, corner(ref) + np.asarray(ref.GetSize()) * ref.GetSpacing())


def test_c3d_volumes_stack_on_one_grid_through_patient_coordinates():
    # CT on a 1 mm grid; MR on a 2 mm grid shifted by 4 mm, with a bright cube at a known
    # physical place; PET missing.
    ct = image(np.full((8, 16, 16), 40.0), spacing=(1.0, 1.0, 1.0))
    mr_arr = np.zeros((4, 8, 8), np.float32)
    mr_arr[1:3, 2:4, 2:4] = 1000.0  # physical x, y in [4 + 4, 4 + 8) mm
    mr = image(mr_arr, spacing=(2.0, 2.0, 2.0), origin=(4.0, 4.0, 0.0))
    case = Case("x", "x", images={"CT": ct, "MR": mr}, truth={"patient_label": 1})
    cfg = {"reference": ["CT", "MR", "PT"], "grid_size": [8, 8, 4], "antialias": False,
           "channels": {"CT": {"windows": [[-400, 1200]], "fill": -1000.0},
                        "MR": {"windows": [[0.0, 1000.0]], "fill": 0.0},
                        "PT": {"windows": [[0.0, 10.0]], "fill": 0.0}}}
    vol = c3d_volumes([case], cfg, names=NAMES)
    assert vol.shape == (1, 3, 4, 8, 8) and vol.dtype == np.float32
    assert np.all(vol[0, 2] == 0)  # PET missing -> zeros
    assert np.allclose(vol[0, 0], (40 + 400) / 1600)
    # the grid has 2 mm voxels over CT's 0..16 mm box: centres at 1, 3, 5, ...; the MR cube
    # spans 8..12 mm, i.e. grid voxels 4 and 5 (centres 9 and 11) in x and y
    mr_on_grid = vol[0, 1]
    bright = np.argwhere(mr_on_grid > 0.5)
    assert set(bright[:, 1]) == {4, 5} and set(bright[:, 2]) == {4, 5}
    assert mr_on_grid.max() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- claims


def test_verdict_rules():
    assert verdict(0.1, 0.02, 0.2) == "supported"
    assert verdict(-0.1, -0.2, -0.01) == "contradicted"
    assert verdict(0.05, -0.01, 0.1) == "inconclusive"
    assert verdict(float("nan"), 0.0, 1.0) == "not measurable"
    assert overall_verdict(["supported", "supported", "not measurable"]) == "supported"
    assert overall_verdict(["contradicted", "contradicted"]) == "contradicted"
    assert overall_verdict(["supported", "contradicted", "inconclusive"]) == "mixed"
    assert overall_verdict(["supported", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["contradicted", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["not measurable"]) == "not measurable"
    # a comparator that failed its gate neither supports nor blocks a claim, and says so
    assert overall_verdict(["comparator not measurable", "supported"]) == "supported"
    assert overall_verdict(["comparator not measurable", "not measurable"]) == "comparator not measurable"


def test_nested_models_compare_fused_and_single_on_the_same_patients(classified):
    root, tables = classified
    oof = tables["nested_oof"]
    patients = oof.groupby(["feature_set", "patients"])["case_id"].agg(frozenset)
    assert len(patients[("fused", "all")]) == 60
    # like for like: the fused model of CT's patients is trained and tested on exactly them
    assert patients[("fused", "CT")] == patients[("CT", "CT")] and len(patients[("CT", "CT")]) == 40
    assert ("MRI", "MRI") not in patients.index  # one patient: skipped (see skipped.csv)
    # and on the same outer folds as the single model
    first = oof[oof["repeat"] == 0]
    fold_of = {key: g.set_index("case_id")["fold"].sort_index() for key, g in first.groupby(["feature_set", "patients"])}
    assert fold_of[("fused", "CT")].equals(fold_of[("CT", "CT")])
    comp = tables["nested_comparisons"]
    auc = comp[(comp["metric"] == "auc") & (comp["single"] == "CT")].set_index("comparison")
    assert set(auc.index) == {"like for like", "all patients"} and (auc["n"] == 40).all()
    assert auc["delong_p"].between(0, 1).all() and auc["p_value"].between(0, 1).all()
    assert auc.loc["like for like", "estimate"] > 0  # PET in the fused set beats weak CT
    assert set(tables["nested_choices"]["chosen"]) <= {"logistic_regression", "naive_bayes", "lda"}
    cal = tables["calibration"].set_index(["feature_set", "patients"])
    assert cal.loc[("fused", "all"), "estimate"] < cal.loc[("CT", "CT"), "estimate"]  # better Brier
    assert (cal["ci_low"] <= cal["estimate"]).all() and (cal["estimate"] <= cal["ci_high"]).all()
    cm = tables["confusion"].set_index(["feature_set", "patients"])
    assert np.allclose(cm[["tp", "fp", "fn", "tn"]].sum(axis=1), cm["n"])
    for name in ("nested_oof", "nested_comparisons", "calibration", "reliability", "confusion"):
        assert (root / "classify" / f"{name}.csv").exists()


def test_choices_table_reads_its_numbers_from_params():
    from crossmodal.params import load_params

    params = load_params(REPO / "params.yaml", "default")
    table = choices_table(params)
    text = " ".join(table["our choice"])
    assert f"{params['part2_detect']['tile_size']} px tiles" in text
    assert f"{params['features']['n_bins']} equal bins" in text
    assert str(params["phantom"]["skeleton"]["n_patients"]) in table.loc["cohort", "our choice"]
    quick = choices_table(load_params(REPO / "params.yaml", "quick"))
    assert quick.loc["cohort", "our choice"] != table.loc["cohort", "our choice"]


# ----------------------------------------------------------------------------- detect stage


STAGE_FILES = {"datasets": ("assignment", "series", "detectors", "cohort_series", "lesion_sizes",
                            "learning_curve"),
               "runs": ("detections", "training", "learning_curve_detections"),
               "evaluate": ("ap", "ap_folds", "learning_curve")}


def detector_cfg(leakage, n_folds=3):
    """A ``part2_detect`` section for 32-pixel slices and one-epoch detectors."""
    return {"seed": 0, "leakage": leakage, "n_folds": n_folds, "holdout_fraction": 0.5, "val_fraction": 0.25,
            "detector": "yolov8", "scale": "n", "slice_size": [32, 32], "tile_size": 32,
            "negatives_per_positive": 1.0, "min_box_pixels": 1, "learning_curve": [0.5], "n_boot": 20, "ci": 0.95, "lesion_hit": "center",
            "train": {"epochs": 1, "batch": 2, "workers": 0, "options": {}},
            "predict": {"ap_conf": 0.01, "batch": 4, "max_det": 10, "iou": 0.6},
            "channels": {"CT": {"windows": [[-400, 1200]] * 3, "body_threshold": 0.2},
                         "MR": {"scale": "percentile", "percentile": 99.0, "windows": [[0, 1.2]] * 3},
                         "PT": {"windows": [[0, 8]] * 3}}}


def detection_params(cfg, *, jobs=1):
    return {"part2_detect": cfg, "cohort": {"skeleton": COHORT}, "features": FEATURES,
            "compute": {"jobs": jobs, "detector_runs": 1}}


def save_cases(cases, ingest_dir):
    for case in cases:
        case.save(ingest_dir / "cases" / case.case_id)
    return ingest_dir


def run_detection_stages(root, cases, cfg):
    """datasets_skeleton -> train_skeleton -> evaluate_skeleton under ``root``; all tables."""
    from crossmodal.stages.skeleton import datasets
    from crossmodal.stages.skeleton import evaluate
    from crossmodal.stages.skeleton import train

    params = detection_params(cfg)
    tables = datasets.run(params, ingest_dir=save_cases(cases, root / "ingest"), out=root / "datasets")
    tables.update(train.run(params, datasets_dir=root / "datasets", out=root / "runs"))
    tables.update(evaluate.run(params, datasets_dir=root / "datasets", runs_dir=root / "runs",
                               out=root / "evaluate"))
    return tables


@pytest.mark.parametrize("leakage", ["cross_fit", "holdout"])
def test_detect_stage_artifacts_obey_the_leakage_rule(tmp_path, monkeypatch, leakage):
    """The datasets, train and evaluate stages with a stand-in detector (no YOLO): which
    patients each detector saw, which it scored, and the tables the later stages read."""
    import crossmodal.detect.train as train_module
    from crossmodal.detect.export import read_index

    seen_by = {}

    class Fake:
        record = {"selected": "fake"}

    def fake_train(name, data_yaml, out_dir, **kw):
        index = pd.DataFrame(read_index(Path(data_yaml).parent))
        if Path(data_yaml).name == "data.yaml":
            seen_by[str(out_dir)] = set(index.loc[index["split"].isin(["train", "val"]), "case_id"])
        else:  # a learning-curve share: the images its listing names
            listed = Path(data_yaml).with_suffix(".txt").read_text().split()
            seen_by[str(out_dir)] = {Path(f).stem.rsplit("_z", 1)[0] for f in listed}
        assert kw["imgsz"] == 32 and kw["epochs"] == 1  # the tile size
        return Fake()

    def fake_predict(model, paths, **kw):
        assert kw["imgsz"] == [32, 32]  # whole slices
        # one confident detection on slices 2 and 3 (the lesion slices of positives), else a weak one
        out = []
        for p in paths:
            z = int(Path(p).stem.rsplit("_z", 1)[1])
            score = 0.9 if z in (2, 3) else 0.1
            out.append(np.array([[4.0, 4.0, 20.0, 20.0, score, 0.0]]))
        return out

    monkeypatch.setattr(train_module, "train_detector", fake_train)
    monkeypatch.setattr(train_module, "predict", fake_predict)
    cases = [make_case(f"c{i:02d}", i % 2, ("CT", "MR", "PT") if i % 3 else ("MR",)) for i in range(12)]
    tables = run_detection_stages(tmp_path / "detect", cases, detector_cfg(leakage))
    series, detections = tables["series"], tables["detections"]
    n_detectors = 3 if leakage == "cross_fit" else 1
    assert len(seen_by) == 3 * n_detectors + 3  # + fold d0's learning-curve share per modality
    for (modality, detector), group in series.groupby(["modality", "detector"]):
        runs = tmp_path / "detect" / "runs" / modality / detector
        saw = seen_by[str(runs.absolute())]
        assert saw and not saw & set(group["case_id"])
        if detector == "d0":  # the share learns from part of d0's patients, never a scored one
            share = seen_by[str((runs / "learning_curve_050").absolute())]
            assert share and share < saw
        index = pd.DataFrame(read_index(tmp_path / "detect" / "datasets" / modality / detector))
        assert set(index.loc[index["split"] == "test", "case_id"]) == set(group["case_id"])
        assert (group["n_slices"] == 6).all()  # every slice of a scored series
    assert not series.duplicated(["case_id", "modality"]).any()
    scored = set(series["case_id"])
    if leakage == "cross_fit":
        assert scored == {c.case_id for c in cases}
    else:
        fit = set().union(*seen_by.values())
        assert scored and not scored & fit and len(scored) + len(fit) <= 12
    # detections: every slice of every scored series, with the per-slice scores above
    assert len(detections) == 6 * len(series)
    assert set(detections["z"][detections["score"] > 0.5]) == {2, 3}
    ap = tables["ap"].set_index("modality")
    assert set(ap.index) == {"CT", "MRI", "PET"} and ap["ap50"].between(0, 1).all()
    curve = tables["learning_curve"]
    assert sorted(curve["fraction"].unique()) == [0.5, 1.0] and len(curve) == 6
    assert (curve.groupby("modality")["train_patients"].apply(lambda v: v.is_monotonic_increasing)).all()
    sizes = tables["lesion_sizes"]
    positives = {c.case_id for c in cases if c.truth["patient_label"]} & scored
    assert set(sizes["case_id"]) == positives and (sizes["max_diameter_px"] > 0).all()
    roles = tables["assignment"]
    assert set(roles["role"]) <= {"train", "val", "scored"}
    for stage, names in STAGE_FILES.items():
        for name in names:
            assert (tmp_path / "detect" / stage / f"{name}.csv").exists()
    # the features stage reads these tables as they are
    params = {"features": FEATURES, "classify": {"cv": {"n_splits": 2, "n_repeats": 1, "seed": 0}},
              "cohort": {"skeleton": COHORT}}
    features = features_stage.run(params, datasets_dir=tmp_path / "detect" / "datasets",
                                  runs_dir=tmp_path / "detect" / "runs", out=tmp_path / "features")["features"]
    assert set(features.index) == scored
    mr_only = [c.case_id for c in cases if list(c.images) == ["MR"] and c.case_id in scored]
    assert (features.loc[mr_only, ["has_CT", "has_PET"]] == 0).all().all()



def test_datasets_stage_writes_the_same_files_on_one_or_two_processes(tmp_path):
    """Exports are seeded per detector, so ``compute.jobs`` changes run time, not files."""
    from crossmodal.stages.skeleton import datasets

    cases = [make_case(f"c{i:02d}", i % 2, ("CT", "PT") if i % 2 else ("MR",)) for i in range(6)]
    ingest = save_cases(cases, tmp_path / "ingest")
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        datasets.run(detection_params(detector_cfg("cross_fit", n_folds=2), jobs=jobs), ingest_dir=ingest,
                     out=out)
        outs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
                     if p.is_file() and p.suffix != ".yaml"})  # a data yaml names its own folder
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) > 20
    assert all(outs[0][k] == outs[1][k] for k in outs[0])

def test_chapter_tables():
    from crossmodal.report.skeleton.claims import c3d_difference_table
    from crossmodal.report.skeleton.claims import claims_view
    from crossmodal.report.skeleton.classifiers import auc_p_values_table
    from crossmodal.report.skeleton.classifiers import c3d_metric_table
    from crossmodal.report.skeleton.classifiers import fused_vs_single_table
    from crossmodal.report.skeleton.detectors import detector_ap_table
    from crossmodal.report.skeleton.detectors import leakage_table

    assignment = pd.DataFrame({"modality": ["CT"] * 4 + ["PET"] * 3, "detector": ["d0"] * 7,
                               "case_id": ["a", "b", "c", "a", "a", "b", "c"],
                               "role": ["train", "val", "scored", "scored", "train", "train", "scored"]})
    leak = leakage_table(assignment)
    assert leak.loc[("CT", "d0"), "patients scored by a detector that saw them"] == 1  # patient a
    assert leak.loc[("PET", "d0"), "patients scored by a detector that saw them"] == 0
    assert leak.loc[("CT", "d0"), "scored"] == 2 and leak.loc[("PET", "d0"), "assigned to train"] == 2

    ap = pd.DataFrame({"modality": ["PET"], "patients": [10], "slices": [80], "lesion_boxes": [12],
                       "ap50": [0.7], "ap50_ci_low": [0.6], "ap50_ci_high": [0.8], "ap50_95": [0.3],
                       "ap50_95_ci_low": [0.2], "ap50_95_ci_high": [0.4], "lesion_sensitivity": [0.9],
                       "lesion_sensitivity_ci_low": [0.8], "lesion_sensitivity_ci_high": [1.0],
                       "fp_per_slice": [0.1234]})
    row = detector_ap_table(ap).loc["PET"]
    assert row["AP50"] == "0.70 [0.60, 0.80]" and row["FP per slice"] == 0.123

    comparisons = pd.DataFrame({"classifier": ["lda", "lda", "lda"], "metric": ["auc", "auc", "f1"],
                                "single": ["CT", "PET", "CT"], "estimate": [0.1, -0.02, 0.3],
                                "ci_low": [0.05, -0.05, 0.1], "ci_high": [0.15, 0.01, 0.5]})
    diff = fused_vs_single_table(comparisons)
    assert diff.loc["lda", ("auc", "CT")] == "0.10 [0.05, 0.15]" and ("f1", "CT") not in diff.columns

    delong = pd.DataFrame({"classifier": ["lda", "lda"], "single": ["CT", "PET"], "p_value": [0.01, 0.6]})
    assert auc_p_values_table(delong).loc["lda", "PET"] == 0.6

    vs_c3d = pd.DataFrame({"comparator": ["c3d"] * 3, "gate passed": [False] * 3,
                           "metric": ["auc", "accuracy", "f1"], "difference": [0.2, 0.1, 0.0],
                           "ci_low": [0.1, 0.0, -0.1], "ci_high": [0.3, 0.2, 0.1]})
    assert list(c3d_difference_table(vs_c3d).columns) == ["auc", "accuracy"]
    from crossmodal.report.skeleton.claims import early_fusion_sentence
    assert "C6 is *comparator not measurable*" in early_fusion_sentence(vs_c3d)
    fallback = pd.concat([vs_c3d, vs_c3d.assign(comparator="early_fusion_histogram", **{"gate passed": True})])
    assert "`early_fusion_histogram`" in early_fusion_sentence(fallback)
    c3d = pd.DataFrame({"metric": ["auc"], "estimate": [0.5], "ci_low": [0.4], "ci_high": [0.6]})
    assert c3d_metric_table(c3d).loc["auc", "C3D"] == "0.50 [0.40, 0.60]"

    claims = pd.DataFrame({"claim": ["C5", "C6"], "comparator": ["CT", "c3d"], "metric": ["auc", "auc"],
                           "patients": ["like for like", "all"], "thesis": [0.085, np.nan],
                           "ours": [0.1, 0.2], "ci_low": [0.05, 0.1], "ci_high": [0.15, 0.3],
                           "p_value": [0.01, 0.0001], "p_holm": [1.0, 0.0002],
                           "verdict": ["comparator not measurable", "supported"],
                           "claim verdict": ["comparator not measurable", "supported"],
                           "thesis_in_ci": [True, np.nan], "gate": ["failed: CT", "passed"]})
    view = claims_view(claims)
    assert view.loc[("C5", "CT"), "ours [95 % CI]"] == "+0.100 [+0.050, +0.150]"
    assert view.loc[("C5", "CT"), "Holm p"] == "1.000" and view.loc[("C6", "c3d"), "p"] == "< 0.001"
    assert view.loc[("C6", "c3d"), "thesis value"] == "no number"
    assert view.loc[("C5", "CT"), "thesis value in CI?"] == "yes"

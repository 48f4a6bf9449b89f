"""Tests for crossmodal.detect.froc (3-D lesion-level FROC) and per-class AP, on hand-made
ground truth and detections whose expected values are worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from crossmodal.detect import froc as fr
from crossmodal.detect import metrics as ev
from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.export import dataset_ground_truth
from crossmodal.detect.export import export_yolo

FAR = [70, 70, 90, 90]  # a box away from every lesion


def _volume(patient, n_slices, lesions=()):
    """Image ids, patient ids, z, boxes and lesion ids of one patient's slices.

    ``lesions``: (lesion_id, z, box) triples.
    """
    ids = [f"{patient}_z{z}" for z in range(n_slices)]
    boxes = [[b for lid, zz, b in lesions if zz == z] for z in range(n_slices)]
    lids = [[lid for lid, zz, b in lesions if zz == z] for z in range(n_slices)]
    return ids, [patient] * n_slices, list(range(n_slices)), boxes, lids


def _gt(*volumes, with_z=True):
    ids, pats, zs, boxes, lids = ([x for v in volumes for x in v[k]] for k in range(5))
    boxes = [np.asarray(b, float).reshape(-1, 4) for b in boxes]
    return ev.ground_truth(ids, pats, boxes, lesion_ids=lids, z=zs if with_z else None)


def _preds(rows):
    """``rows``: (image_id, box, score) -> prediction table (class 0)."""
    ids = [r[0] for r in rows]
    dets = [np.array([[*r[1], r[2], 0]], float) for r in rows]
    return ev.predictions(ids, dets)


# ----------------------------------------------------------------- lesions and findings


def test_lesion_on_three_slices_is_found_by_one_detection():
    box = [10, 10, 30, 30]
    gt = _gt(_volume("A", 6, [(1, 1, box), (1, 2, box), (1, 3, box)]))
    curve = fr.froc(gt, _preds([("A_z2", box, 0.9)]))
    # One lesion (not three boxes), found at 0.9; the detection is no false positive.
    assert curve.n_lesions == 1
    np.testing.assert_array_equal(curve.thresholds, [0.9])
    np.testing.assert_array_equal(curve.sensitivity, [1.0])
    np.testing.assert_array_equal(curve.fp_per_patient, [0.0])


def _fp_counts(rows, *, with_z=True):
    gt = _gt(_volume("A", 6, [(1, 5, [10, 10, 30, 30])]), with_z=with_z)
    curve = fr.froc(gt, _preds(rows))
    return curve.thresholds, curve.fp_per_patient


def test_false_positives_on_adjacent_overlapping_slices_are_one_finding():
    thresholds, fp = _fp_counts([("A_z0", FAR, 0.8), ("A_z1", [75, 75, 95, 95], 0.6)])
    np.testing.assert_array_equal(thresholds, [0.8, 0.6])
    np.testing.assert_array_equal(fp, [1, 1])


@pytest.mark.parametrize(
    "second",
    [
        ("A_z2", [75, 75, 95, 95], 0.6),  # overlapping box, slice not adjacent (dz = 2)
        ("A_z1", [0, 0, 20, 20], 0.6),  # adjacent slice, boxes apart
        ("A_z0", [0, 0, 20, 20], 0.6),  # same slice, boxes apart
    ],
)
def test_false_positives_apart_are_two_findings(second):
    _, fp = _fp_counts([("A_z0", FAR, 0.8), second])
    np.testing.assert_array_equal(fp, [1, 2])


def test_findings_are_formed_among_the_detections_kept():
    # z0 (0.9) and z2 (0.8) are joined only through z1 (0.1): two findings at 0.8, one at 0.1.
    thresholds, fp = _fp_counts(
        [("A_z0", FAR, 0.9), ("A_z1", FAR, 0.1), ("A_z2", FAR, 0.8)]
    )
    np.testing.assert_array_equal(thresholds, [0.9, 0.8, 0.1])
    np.testing.assert_array_equal(fp, [1, 2, 1])


def test_without_z_every_false_positive_detection_is_a_finding():
    _, fp = _fp_counts([("A_z0", FAR, 0.8), ("A_z1", [75, 75, 95, 95], 0.6)], with_z=False)
    np.testing.assert_array_equal(fp, [1, 2])


def test_center_rule_against_iou_rule():
    box = [10, 10, 30, 30]
    gt = _gt(_volume("A", 3, [(1, 1, box)]))
    # Centre (26, 26) is inside the box; IoU = 18*18 / (400 + 784 - 324) = 0.377 < 0.5.
    preds = _preds([("A_z1", [12, 12, 40, 40], 0.7)])
    by_iou = fr.froc(gt, preds, lesion_hit="iou")
    by_centre = fr.froc(gt, preds, lesion_hit="center")
    np.testing.assert_array_equal(by_iou.sensitivity, [0.0])
    np.testing.assert_array_equal(by_iou.fp_per_patient, [1.0])
    np.testing.assert_array_equal(by_centre.sensitivity, [1.0])
    np.testing.assert_array_equal(by_centre.fp_per_patient, [0.0])
    assert fr.froc(gt, preds, lesion_hit="iou", iou=0.3).sensitivity[0] == 1.0
    with pytest.raises(ValueError, match="rule"):
        fr.froc(gt, preds, lesion_hit="overlap")


# ----------------------------------------------------------------- two patients, read-outs


def _two_patients():
    """Two patients, 4 lesions, 3 found, 4 separate false-positive findings.

    score  event               found  FP findings (2 patients)
    0.9    P1 lesion 1         1      0
    0.8    P1 FP z0            1      1
    0.7    P2 lesion 1         2      1
    0.6    P2 FP z2            2      2
    0.5    P1 lesion 2         3      2
    0.4    P1 FP z3 (dz=3)     3      3
    0.3    P2 FP z0 (dz=2)     3      4
    """
    box = [10, 10, 30, 30]
    gt = _gt(
        _volume("P1", 4, [(1, 1, box), (2, 2, [40, 40, 60, 60])]),
        _volume("P2", 4, [(1, 0, box), (2, 3, box)]),
    )
    preds = _preds(
        [
            ("P1_z1", box, 0.9),
            ("P1_z0", FAR, 0.8),
            ("P2_z0", [11, 11, 30, 30], 0.7),  # IoU 361/400
            ("P2_z2", FAR, 0.6),
            ("P1_z2", [40, 40, 60, 60], 0.5),
            ("P1_z3", FAR, 0.4),
            ("P2_z0", FAR, 0.3),
        ]
    )
    return gt, preds


def test_curve_thresholds_descend_and_counts_follow_them():
    gt, preds = _two_patients()
    curve = fr.froc(gt, preds)
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    np.testing.assert_allclose(curve.sensitivity, np.array([1, 1, 2, 2, 3, 3, 3]) / 4)
    np.testing.assert_allclose(curve.fp_per_patient, np.array([0, 1, 1, 2, 2, 3, 4]) / 2)
    assert curve.max_fp_per_patient == np.inf


def test_equal_scores_make_one_threshold():
    gt, preds = _two_patients()
    preds.loc[preds["score"] == 0.8, "score"] = 0.9
    curve = fr.froc(gt, preds)
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.7, 0.6, 0.5, 0.4, 0.3])
    assert curve.sensitivity[0] == 0.25 and curve.fp_per_patient[0] == 0.5


def test_sensitivity_at_fp_reads_the_step_curve():
    curve = fr.froc(*_two_patients())
    # FP/patient <= 0.25: only 0.9 qualifies; <= 0.5: down to 0.7; <= 1 and <= 2: down to 0.3.
    np.testing.assert_allclose(
        fr.sensitivity_at_fp(curve, (0.25, 0.5, 1, 2)), [0.25, 0.5, 0.75, 0.75]
    )
    assert fr.sensitivity_at_fp(curve).shape == (4,)


def test_sensitivity_at_fp_is_zero_below_the_first_point():
    gt, preds = _two_patients()
    preds = preds[preds["score"] != 0.9]  # the top detection is now a false positive (0.8)
    curve = fr.froc(gt, preds)
    # 0.8 already has 0.5 FP/patient; <= 0.5 reaches down to 0.7, where 1 of 4 is found.
    np.testing.assert_allclose(fr.sensitivity_at_fp(curve, (0.25, 0.5)), [0.0, 0.25])


def test_fp_at_sensitivity_and_unreachable_levels():
    curve = fr.froc(*_two_patients())
    assert fr.fp_at_sensitivity(curve, 0.5) == 0.5  # first reached at 0.7
    assert fr.fp_at_sensitivity(curve, 0.75) == 1.0  # at 0.5
    assert fr.fp_at_sensitivity(curve, 0.6) == 1.0
    assert np.isnan(fr.fp_at_sensitivity(curve, 1.0))
    out = fr.fp_at_sensitivity(curve, [0.25, 1.0])
    assert out[0] == 0.0 and np.isnan(out[1])


def test_a_patient_counted_twice_doubles_its_lesions_and_findings():
    gt, preds = _two_patients()
    weights = np.array([[1, 1], [2, 1], [0, 1]])
    curve = fr.froc(gt, preds, patient_weights=weights)
    assert curve.sensitivity.shape == curve.fp_per_patient.shape == (3, 7)
    np.testing.assert_allclose(curve.n_lesions, [4, 6, 2])
    # P1 twice: lesions 2*2 + 2 = 6, found 2, 2, 3, 3, 5, 5, 5; findings of P1 (0.8, 0.4)
    # twice and of P2 (0.6, 0.3) once over 3 patients.
    np.testing.assert_allclose(curve.sensitivity[1], np.array([2, 2, 3, 3, 5, 5, 5]) / 6)
    np.testing.assert_allclose(curve.fp_per_patient[1], np.array([0, 2, 2, 3, 3, 5, 6]) / 3)
    unweighted = fr.froc(gt, preds)
    np.testing.assert_allclose(curve.sensitivity[0], unweighted.sensitivity)
    # The same as materialising the resample (patients copied under new ids, z kept).
    copy = fr.froc(*ev.resample_patients(gt, preds, weights[1]))
    np.testing.assert_allclose(curve.sensitivity[1], copy.sensitivity)
    np.testing.assert_allclose(curve.fp_per_patient[1], copy.fp_per_patient)
    # Read-outs keep one row per resample.
    assert fr.sensitivity_at_fp(curve).shape == (3, 4)
    at = fr.fp_at_sensitivity(curve, 0.5)
    assert at.shape == (3,)
    assert at[1] == pytest.approx(2 / 3)  # 3/6 first reached at 0.7, with 2 findings / 3
    assert fr.fp_at_sensitivity(curve, [0.5, 0.9]).shape == (3, 2)


def test_no_lesions_gives_nan_sensitivity():
    gt = _gt(_volume("A", 3))
    curve = fr.froc(gt, _preds([("A_z0", FAR, 0.5)]))
    assert np.isnan(curve.sensitivity).all()
    assert np.isnan(fr.sensitivity_at_fp(curve)).all()
    np.testing.assert_array_equal(curve.fp_per_patient, [1.0])


# ----------------------------------------------------------------- against other metrics


def _random_volumes(seed, *, n_patients=5, n_slices=8, n_classes=1, fp_per_slice=6):
    """Lesions spanning a few slices, jittered detections and many false positives."""
    rng = np.random.default_rng(seed)
    ids, pats, zs, boxes, classes, lids, dets = [], [], [], [], [], [], []
    for p in range(n_patients):
        centres = rng.uniform(20, 100, size=(3, 2))
        spans = [(int(a), int(a) + int(rng.integers(1, 4))) for a in rng.integers(0, n_slices, 3)]
        for z in range(n_slices):
            ids.append(f"p{p}_z{z}")
            pats.append(f"p{p}")
            zs.append(z)
            on = [k for k, (a, b) in enumerate(spans) if a <= z < b]
            b = np.array([[*(centres[k] - 8), *(centres[k] + 8)] for k in on]).reshape(-1, 4)
            boxes.append(b)
            classes.append(np.array(on, int) % n_classes)
            lids.append(np.array(on, int))
            d = [[*(bb + rng.normal(0, 3, 4)), rng.uniform(0.2, 1), c]
                 for bb, c in zip(b, classes[-1]) if rng.random() < 0.7]
            xy = rng.uniform(0, 110, size=(fp_per_slice, 2))
            for k in range(fp_per_slice):
                d.append([*xy[k], *(xy[k] + rng.uniform(5, 25, 2)), rng.uniform(0, 0.9),
                          rng.integers(0, n_classes)])
            dets.append(np.asarray(d, float).reshape(-1, 6))
    gt = ev.ground_truth(ids, pats, boxes, classes=classes, lesion_ids=lids, z=zs)
    return gt, ev.predictions(ids, dets)


@pytest.mark.parametrize("rule", ["iou", "center"])
def test_sensitivity_matches_lesion_sensitivity_at_every_threshold(rule):
    gt, preds = _random_volumes(1)
    curve = fr.froc(gt, preds, lesion_hit=rule, max_fp_per_patient=None)
    for k in range(0, len(curve.thresholds), 7):
        expected = ev.lesion_sensitivity(gt, preds, curve.thresholds[k], rule=rule)
        assert curve.sensitivity[k] == pytest.approx(expected)


def test_cut_curve_is_the_head_of_the_whole_curve():
    gt, preds = _random_volumes(2, fp_per_slice=20)
    whole = fr.froc(gt, preds, max_fp_per_patient=None)
    cut = fr.froc(gt, preds, max_fp_per_patient=1.0)
    n = len(cut.thresholds)
    assert 0 < n < len(whole.thresholds)
    assert cut.max_fp_per_patient == 1.0 and cut.fp_per_patient[-1] > 1.0
    np.testing.assert_array_equal(cut.thresholds, whole.thresholds[:n])
    np.testing.assert_allclose(cut.sensitivity, whole.sensitivity[:n])
    np.testing.assert_allclose(cut.fp_per_patient, whole.fp_per_patient[:n])
    np.testing.assert_allclose(fr.sensitivity_at_fp(cut, [0.5, 1.0]),
                               fr.sensitivity_at_fp(whole, [0.5, 1.0]))
    with pytest.raises(ValueError, match="max_fp_per_patient"):
        fr.sensitivity_at_fp(cut, [2.0])


def test_dataset_ground_truth_carries_z(tmp_path):
    records = [SliceRecord(case_id="c1", z=z, image=np.zeros((16, 16, 3)),
                           boxes=[(2, 2, 8, 8)] if z == 4 else [], lesion_ids=[1] if z == 4 else [])
               for z in (3, 4, 7)]
    export_yolo(records, tmp_path / "ds", split_of={"c1": "test"})
    gt = dataset_ground_truth([tmp_path / "ds"], "test")
    assert sorted(gt.images["z"]) == [3, 4, 7]
    assert gt.images.set_index("z").loc[4, "image_id"] == gt.boxes["image_id"].iloc[0]


# ----------------------------------------------------------------- per-class AP


def _keep_class(gt, preds, c):
    boxes = gt.boxes[gt.boxes["class_id"] == c]
    return ev.GroundTruth(images=gt.images, boxes=boxes), preds[preds["class_id"] == c]


def test_ap_per_class_is_ap_on_that_class_alone():
    gt, preds = _random_volumes(3, n_classes=2)
    per_class = ev.ap50_per_class(gt, preds)
    assert set(per_class) == {0, 1}
    for c, value in per_class.items():
        assert value == pytest.approx(ev.ap50(*_keep_class(gt, preds, c)))
    weights = np.random.default_rng(0).multinomial(5, np.ones(5) / 5, size=20)
    boot = ev.ap50_per_class(gt, preds, patient_weights=weights)
    for c in (0, 1):
        expected = ev.ap50(*_keep_class(gt, preds, c), patient_weights=weights)
        np.testing.assert_allclose(boot[c], expected)
    # Their mean is the headline AP50 (mean over classes with ground truth).
    assert np.mean(list(per_class.values())) == pytest.approx(ev.ap50(gt, preds))


def test_ap_of_a_class_without_ground_truth_is_nan():
    gt, preds = _random_volumes(4, n_classes=2)
    gt0, _ = _keep_class(gt, preds, 0)
    per_class = ev.ap50_per_class(gt0, preds)  # class 1 only among the predictions
    assert set(per_class) == {0, 1} and np.isnan(per_class[1])
    assert np.isnan(ev.ap50_per_class(gt0, preds, class_ids=[7])[7])


def test_cut_reaches_past_many_merged_detections():
    # 30 detections joined into one finding above three separate ones: the first batch of
    # top detections holds one finding only, so froc must look further down.
    rows = [(f"A_z{z}", FAR, 0.9 - 0.01 * (3 * z + k)) for z in range(10) for k in range(3)]
    rows += [("A_z0", [0, 0, 5, 5], 0.3), ("A_z2", [0, 0, 5, 5], 0.2), ("A_z4", [0, 0, 5, 5], 0.1)]
    gt = _gt(_volume("A", 10, [(1, 5, [30, 30, 50, 50])]))
    cut = fr.froc(gt, _preds(rows), max_fp_per_patient=1.5)
    np.testing.assert_allclose(cut.thresholds[-2:], [0.61, 0.3])
    np.testing.assert_array_equal(cut.fp_per_patient[[0, -2, -1]], [1, 1, 2])
    whole = fr.froc(gt, _preds(rows), max_fp_per_patient=None)
    np.testing.assert_array_equal(whole.fp_per_patient[-3:], [2, 3, 4])


def test_sensitivity_over_one_class_and_hits_on_others_are_no_false_positive():
    tumour, node = [10, 10, 30, 30], [50, 50, 60, 60]
    ids = ["A_z0", "A_z1"]
    boxes = [np.asarray([tumour, node], float), np.zeros((0, 4))]
    gt = ev.ground_truth(ids, ["A", "A"], boxes, classes=[[0, 1], []], lesion_ids=[[1, 2], []], z=[0, 1])
    preds = _preds([("A_z0", node, 0.9), ("A_z0", tumour, 0.5)])
    primary = fr.froc(gt, preds, lesion_classes=[0])
    # one tumour lesion, found at 0.5; the 0.9 detection hits the node: no false positive
    assert primary.n_lesions == 1
    np.testing.assert_array_equal(primary.thresholds, [0.9, 0.5])
    np.testing.assert_array_equal(primary.sensitivity, [0.0, 1.0])
    np.testing.assert_array_equal(primary.fp_per_patient, [0.0, 0.0])
    assert fr.froc(gt, preds).n_lesions == 2

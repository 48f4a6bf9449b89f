"""Tests for crossmodal.detect.metrics: COCO AP (against pycocotools), operating-point metrics,
lesion sensitivity and the patient bootstrap."""

from __future__ import annotations

import contextlib
import functools
import io
import time

import numpy as np
import pandas as pd
import pytest

from crossmodal.detect import metrics as ev


def _random_dataset(seed: int, *, n_patients=6, slices=5, n_classes=1, empty_pred_share=0.2):
    """Random boxes; jittered copies plus random false positives as predictions.

    Some slices have no GT (false positives only), some no predictions.
    """
    rng = np.random.default_rng(seed)
    image_ids, patient_ids, boxes, classes, lesions, dets = [], [], [], [], [], []
    for p in range(n_patients):
        for z in range(slices):
            image_ids.append(f"p{p}_z{z}")
            patient_ids.append(f"p{p}")
            k = int(rng.integers(0, 4))  # 0 -> slice without GT
            xy = rng.uniform(0, 100, size=(k, 2))
            wh = rng.uniform(4, 30, size=(k, 2))
            b = np.column_stack([xy, xy + wh])
            c = rng.integers(0, n_classes, size=k)
            boxes.append(b)
            classes.append(c)
            lesions.append(rng.integers(0, 2, size=k))  # lesions span slices
            d = []
            if rng.random() > empty_pred_share:
                for box, cls in zip(b, c):
                    if rng.random() < 0.8:
                        size = box[2:] - box[:2]
                        noisy = box + rng.normal(0, 0.12, size=4) * np.r_[size, size]
                        noisy[2:] = np.maximum(noisy[2:], noisy[:2] + 1)
                        d.append([*noisy, rng.uniform(0.05, 1.0), cls])
                for _ in range(int(rng.integers(0, 4))):
                    xy0 = rng.uniform(0, 100, size=2)
                    wh0 = rng.uniform(4, 30, size=2)
                    d.append(
                        [*xy0, *(xy0 + wh0), rng.uniform(0.0, 0.8), rng.integers(0, n_classes)]
                    )
            dets.append(np.asarray(d, float).reshape(-1, 6))
    gt = ev.ground_truth(image_ids, patient_ids, boxes, classes=classes, lesion_ids=lesions)
    return gt, ev.predictions(image_ids, dets)


def _coco_eval(gt: ev.GroundTruth, preds: pd.DataFrame, max_dets: int):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {im: i + 1 for i, im in enumerate(gt.images["image_id"])}
    classes = sorted(set(gt.boxes["class_id"]) | set(preds["class_id"]))
    anns = []
    for r in gt.boxes.itertuples():
        w, h = r.x1 - r.x0, r.y1 - r.y0
        anns.append(
            dict(
                id=len(anns) + 1,
                image_id=ids[r.image_id],
                category_id=int(r.class_id) + 1,
                bbox=[r.x0, r.y0, w, h],
                area=w * h,
                iscrowd=0,
            )
        )
    dataset = dict(
        images=[dict(id=i, width=200, height=200) for i in ids.values()],
        annotations=anns,
        categories=[dict(id=c + 1, name=str(c)) for c in classes],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        results = [
            dict(
                image_id=ids[r.image_id],
                category_id=int(r.class_id) + 1,
                bbox=[r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0],
                score=r.score,
            )
            for r in preds.itertuples()
        ]
        dt = coco.loadRes(results) if results else COCO()
        e = COCOeval(coco, dt, "bbox")
        e.params.maxDets = [max_dets]
        e.params.areaRng = [e.params.areaRng[0]]  # 'all'
        e.params.areaRngLbl = ["all"]
        e.evaluate()
        e.accumulate()
    precision = e.eval["precision"][:, :, :, 0, 0]  # (T, R, K)
    ap = []
    for t in range(precision.shape[0]):
        per_class = precision[t]
        valid = per_class[:, per_class[0] > -1] if per_class.size else per_class
        ap.append(valid.mean() if valid.size else np.nan)
    return ap[0], float(np.mean(ap))


# --------------------------------------------------------------------------- AP basics


def _simple_gt():
    boxes = [
        np.array([[10, 10, 20, 20], [40, 40, 60, 50]]),
        np.zeros((0, 4)),
        np.array([[5, 5, 15, 25]]),
    ]
    return ev.ground_truth(["a", "b", "c"], ["P1", "P1", "P2"], boxes, lesion_ids=[[1, 2], [], [1]])


def test_perfect_detections_give_ap_one():
    gt = _simple_gt()
    dets = [
        np.c_[b, np.full(len(b), 0.9), np.zeros(len(b))]
        for b in [gt.boxes[gt.boxes.image_id == i][ev.BOX_COLUMNS].to_numpy() for i in ["a", "b", "c"]]
    ]
    preds = ev.predictions(["a", "b", "c"], dets)
    assert ev.ap50(gt, preds) == pytest.approx(1.0)
    assert ev.ap50_95(gt, preds) == pytest.approx(1.0)
    assert ev.precision_recall_at(gt, preds, 0.5) == pytest.approx((1.0, 1.0))
    assert ev.false_positives_per_slice(gt, preds, 0.5) == 0.0
    assert ev.lesion_sensitivity(gt, preds, 0.5) == 1.0


def test_all_misses_give_zero():
    gt = _simple_gt()
    preds = ev.predictions(
        ["a", "b"], [np.array([[70, 70, 90, 90, 0.9, 0]]), np.array([[0, 0, 5, 5, 0.8, 0]])]
    )
    assert ev.ap50(gt, preds) == 0.0
    assert ev.ap50_95(gt, preds) == 0.0
    precision, recall = ev.precision_recall_at(gt, preds, 0.1)
    assert precision == 0.0 and recall == 0.0
    assert ev.false_positives_per_slice(gt, preds, 0.1) == pytest.approx(2 / 3)
    assert ev.false_positives_per_slice(gt, preds, 0.85) == pytest.approx(1 / 3)
    assert ev.lesion_sensitivity(gt, preds, 0.0) == 0.0
    # no predictions at all
    empty = ev.predictions([], [])
    assert ev.ap50(gt, empty) == 0.0


def test_hand_computed_pr_curve_and_ap():
    # One image, 4 GT boxes; ranked detections: TP, FP, TP, FP, TP (scores .9 .. .5).
    gt_boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], float)
    gt = ev.ground_truth(["i"], ["P"], [gt_boxes])
    far = [100, 100, 110, 110]
    dets = np.array(
        [
            [*gt_boxes[0], 0.9, 0],
            [*far, 0.8, 0],
            [*gt_boxes[1], 0.7, 0],
            [*far, 0.6, 0],
            [*gt_boxes[2], 0.5, 0],
        ]
    )
    preds = ev.predictions(["i"], [dets])
    curve = ev.pr_curve(gt, preds)
    np.testing.assert_allclose(curve.score, [0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(curve.precision, [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(curve.recall, [0.25, 0.25, 0.5, 0.5, 0.75])
    # Interpolated precision: r in [0, .25] -> 1; (.25, .5] -> 2/3; (.5, .75] -> 3/5; > .75 -> 0.
    n1, n2, n3 = 26, 25, 25  # thresholds 0..0.25, 0.26..0.50, 0.51..0.75
    expected = (n1 * 1 + n2 * 2 / 3 + n3 * 3 / 5) / 101
    assert ev.ap50(gt, preds) == pytest.approx(expected)
    np.testing.assert_allclose(curve.precision_interpolated.mean(), expected)
    # max-F1 operating point: F1 at .9 = .4, .7 = 4/7, .5 = 2*.6*.75/1.35 = 2/3
    assert ev.choose_operating_confidence(gt, preds) == pytest.approx(0.5)
    assert ev.choose_operating_confidence(
        gt, preds, rule="min_recall", target=0.5
    ) == pytest.approx(0.7)
    assert ev.choose_operating_confidence(
        gt, preds, rule="min_precision", target=0.65
    ) == pytest.approx(0.7)
    assert ev.precision_recall_at(gt, preds, 0.7) == pytest.approx((2 / 3, 0.5))


def test_duplicates_are_false_positives_and_max_dets():
    gt = ev.ground_truth(["i"], ["P"], [np.array([[0, 0, 10, 10]])])
    dets = np.array([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.8, 0]])
    preds = ev.predictions(["i"], [dets])
    assert ev.precision_recall_at(gt, preds, 0.0) == pytest.approx((0.5, 1.0))
    assert ev.ap50(gt, preds) == pytest.approx(1.0)  # the duplicate ranks after the TP
    low_first = ev.predictions(
        ["i"], [np.array([[50, 50, 60, 60, 0.95, 0], [0, 0, 10, 10, 0.5, 0]])]
    )
    assert ev.ap50(gt, low_first, max_dets=1) == 0.0
    assert ev.ap50(gt, low_first, max_dets=None) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "seed,n_classes,max_dets", [(0, 1, 100), (1, 1, 2), (2, 3, 100), (3, 2, 1000)]
)
def test_agrees_with_pycocotools(seed, n_classes, max_dets):
    gt, preds = _random_dataset(seed, n_classes=n_classes)
    # the fixture must contain the edge cases
    n_gt = gt.boxes.groupby("image_id").size().reindex(gt.images.image_id, fill_value=0)
    n_pred = preds.groupby("image_id").size().reindex(gt.images.image_id, fill_value=0)
    assert (n_gt == 0).any() and (n_pred == 0).any() and ((n_gt == 0) & (n_pred > 0)).any()
    coco50, coco5095 = _coco_eval(gt, preds, max_dets)
    ours50 = ev.ap50(gt, preds, max_dets=max_dets)
    ours5095 = ev.ap50_95(gt, preds, max_dets=max_dets)
    assert 0.05 < ours50 < 0.99  # a non-trivial case
    assert ours50 == pytest.approx(coco50, abs=0.01)
    assert ours5095 == pytest.approx(coco5095, abs=0.01)
    # with distinct random scores the match is in fact exact
    assert ours50 == pytest.approx(coco50, abs=1e-9)
    assert ours5095 == pytest.approx(coco5095, abs=1e-9)


# --------------------------------------------------------------------------- lesion level


def test_lesion_sensitivity_counts_3d_lesions():
    # Lesion 7 of P spans slices a and b; only its slice-b box is hit -> detected.
    boxes = [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 12, 12], [30, 30, 40, 40]])]
    gt = ev.ground_truth(["a", "b"], ["P", "P"], boxes, lesion_ids=[[7], [7, 8]])
    preds = ev.predictions(["a", "b"], [np.zeros((0, 6)), np.array([[1, 1, 12, 12, 0.6, 0]])])
    assert ev.lesion_sensitivity(gt, preds, 0.5) == pytest.approx(1 / 2)
    assert ev.lesion_sensitivity(gt, preds, 0.7) == 0.0
    # centre rule: a small box centred on lesion 8 fails IoU but hits by centre
    centred = ev.predictions(["b"], [np.array([[34, 34, 36, 36, 0.9, 0]])])
    assert ev.lesion_sensitivity(gt, centred, 0.5) == 0.0
    assert ev.lesion_sensitivity(gt, centred, 0.5, rule="center") == pytest.approx(1 / 2)
    # without lesion ids each box is a lesion
    gt_boxes = ev.ground_truth(["a", "b"], ["P", "P"], boxes)
    assert ev.lesion_sensitivity(gt_boxes, preds, 0.5) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- bootstrap


def test_weighted_metrics_equal_materialised_resample():
    gt, preds = _random_dataset(5, n_patients=5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        counts = rng.multinomial(5, np.full(5, 0.2))
        rs_gt, rs_preds = ev.resample_patients(gt, preds, counts)
        for fn in (
            ev.ap50,
            ev.ap50_95,
            functools.partial(ev.false_positives_per_slice, conf=0.3),
            functools.partial(ev.lesion_sensitivity, conf=0.3),
        ):
            weighted = fn(gt, preds, patient_weights=counts[None, :])[0]
            direct = fn(rs_gt, rs_preds)
            assert weighted == pytest.approx(direct, abs=1e-9, nan_ok=True)


def test_bootstrap_ci_contains_estimate_and_paired_difference():
    gt, preds = _random_dataset(7, n_patients=12)
    est, lo, hi = ev.patient_bootstrap(ev.ap50, gt, preds, n_boot=500, seed=1)
    assert lo <= est <= hi and lo < hi
    # determinism: same seed, same interval
    assert ev.patient_bootstrap(ev.ap50, gt, preds, n_boot=500, seed=1) == (est, lo, hi)
    diff, dlo, dhi = ev.paired_bootstrap_difference(
        ev.ap50, gt, preds, preds.copy(), n_boot=200, seed=3
    )
    assert diff == 0.0 and dlo == 0.0 and dhi == 0.0
    # a clearly worse detector (scores shuffled) gives a positive difference
    worse = preds.copy()
    worse["score"] = np.random.default_rng(0).permutation(worse["score"].to_numpy())
    diff, dlo, dhi = ev.paired_bootstrap_difference(ev.ap50, gt, preds, worse, n_boot=300, seed=3)
    assert dlo <= diff <= dhi and diff > 0
    # tuple-valued metrics get per-element intervals
    est, lo, hi = ev.patient_bootstrap(
        functools.partial(ev.precision_recall_at, conf=0.3), gt, preds, n_boot=200, seed=0
    )
    assert est.shape == lo.shape == hi.shape == (2,)
    assert np.all(lo <= est) and np.all(est <= hi)


def test_bootstrap_fallback_for_plain_metric_matches_weighted():
    gt, preds = _random_dataset(8, n_patients=4)

    def plain(g, p):  # no patient_weights -> materialised resamples
        return ev.ap50(g, p)

    assert ev.patient_bootstrap(plain, gt, preds, n_boot=20, seed=2) == pytest.approx(
        ev.patient_bootstrap(ev.ap50, gt, preds, n_boot=20, seed=2)
    )


def test_bootstrap_is_fast():
    # ~300 slices, 30 patients, conf 0.001-style prediction clutter.
    gt, preds = _random_dataset(11, n_patients=30, slices=10)
    clutter = preds.sample(frac=1.0, random_state=0)
    big = pd.concat([preds] + [clutter.assign(score=clutter.score * 0.05)] * 10, ignore_index=True)
    start = time.perf_counter()
    est, lo, hi = ev.patient_bootstrap(ev.ap50, gt, big, n_boot=1000, seed=0)
    ev.patient_bootstrap(ev.ap50_95, gt, big, n_boot=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert lo <= est <= hi
    assert elapsed < 20, f"bootstrap too slow: {elapsed:.1f}s"

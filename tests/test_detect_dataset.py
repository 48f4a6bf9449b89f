"""Tests for crossmodal.detect.dataset: boxes, split, sampling, YOLO / COCO export."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from crossmodal.detect.dataset import SliceRecord
from crossmodal.detect.dataset import boxes_from_mask
from crossmodal.detect.dataset import label_lesions_3d
from crossmodal.detect.dataset import patient_split
from crossmodal.detect.dataset import sample_slices
from crossmodal.detect.export import export_coco
from crossmodal.detect.export import export_yolo
from crossmodal.detect.export import read_index
from crossmodal.detect.export import read_split
from crossmodal.detect.export import read_yolo_labels


def test_boxes_from_mask_inclusive_exclusive_and_8_connected():
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:9] = True  # rows 2..4, cols 3..8
    mask[10, 10] = mask[11, 11] = True  # diagonal neighbours: one 8-connected component
    mask[15, 25] = True  # a single pixel
    assert boxes_from_mask(mask) == [(3, 2, 9, 5), (10, 10, 12, 12), (25, 15, 26, 16)]
    assert boxes_from_mask(mask, min_pixels=2) == [(3, 2, 9, 5), (10, 10, 12, 12)]
    assert boxes_from_mask(np.zeros((4, 4))) == []


def test_boxes_from_labelled_mask_keeps_touching_lesions_apart():
    labels = np.zeros((10, 10), np.int32)
    labels[2:4, 2:4] = 3
    labels[2:4, 4:6] = 5  # touches lesion 3
    boxes, ids = boxes_from_mask(labels, return_labels=True)
    assert boxes == [(2, 2, 4, 4), (4, 2, 6, 4)] and ids == [3, 5]


def test_label_lesions_3d_connectivity():
    vol = np.zeros((3, 5, 5), bool)
    vol[0, 1, 1] = vol[1, 2, 2] = True  # corner neighbours across slices
    assert label_lesions_3d(vol).max() == 1
    assert label_lesions_3d(vol, connectivity=6).max() == 2


def test_patient_split_stratified_deterministic_non_empty():
    cases = [f"c{i:02d}" for i in range(20)]
    strata = ["big" if i % 4 == 0 else "small" for i in range(20)]
    split = patient_split(cases, strata, seed=3)
    assert split == patient_split(cases[::-1], strata[::-1], seed=3)  # order-free
    assert split != patient_split(cases, strata, seed=4)
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 12, "val": 4, "test": 4}
    big = [c for c, s in zip(cases, strata) if s == "big"]  # 5 cases -> 3/1/1
    assert sorted(split[c] for c in big) == ["test", "train", "train", "train", "val"]
    # repeated ids (one per slice) are fine; tiny cohorts still fill every split
    small = patient_split(["a", "a", "b", "c"], [0, 0, 1, 1], seed=0)
    assert sorted(small.values()) == ["test", "train", "val"]
    with pytest.raises(ValueError):
        patient_split(["a", "a"], [0, 1], seed=0)


def test_sample_slices():
    pos = [("a", 3), ("a", 4)]
    neg = [("a", z) for z in range(10) if z not in (3, 4)]
    chosen = sample_slices(pos, neg, negatives_per_positive=1.5, seed=0, must_include=[("a", 9)])
    assert set(pos) <= set(chosen) and ("a", 9) in chosen and len(chosen) == 5
    assert chosen == sample_slices(
        pos, neg[::-1], negatives_per_positive=1.5, seed=0, must_include=[("a", 9)]
    )
    assert len(sample_slices(pos, neg, negatives_per_positive=float("inf"), seed=0)) == 10
    assert sample_slices(pos, neg, negatives_per_positive=0, seed=0) == pos


def _records(seed=0, n_cases=6, per_case=3, size=(48, 64)):
    rng = np.random.default_rng(seed)
    records = []
    for c in range(n_cases):
        for z in range(per_case):
            image = rng.uniform(0, 1, size=(*size, 3))
            k = int(rng.integers(0, 3))  # 0 -> negative slice
            boxes = []
            for _ in range(k):
                x0, y0 = int(rng.integers(0, size[1] - 6)), int(rng.integers(0, size[0] - 6))
                boxes.append(
                    (
                        x0,
                        y0,
                        int(rng.integers(x0 + 1, size[1] + 1)),
                        int(rng.integers(y0 + 1, size[0] + 1)),
                    )
                )
            records.append(
                SliceRecord(
                    case_id=f"case{c}", z=z * 7, image=image, boxes=boxes, lesion_ids=list(range(k))
                )
            )
    return records


def test_export_yolo_round_trip_and_layout(tmp_path):
    records = _records()
    split = patient_split([r.case_id for r in records], [0] * len(records), seed=1)
    data_yaml = export_yolo(records, tmp_path / "ds", split_of=split, class_names=["lesion"])
    data = yaml.safe_load(data_yaml.read_text())
    assert data["path"] == str((tmp_path / "ds").absolute())
    assert (data["train"], data["val"], data["test"], data["channels"]) == (
        "images/train",
        "images/val",
        "images/test",
        3,
    )
    assert data["names"] == {0: "lesion"}
    assert data_yaml.read_text().startswith("#")  # header with the folder tree
    rows = read_index(tmp_path / "ds")
    assert len(rows) == len(records)
    # no patient in two splits
    splits_of_case = {}
    for row in rows:
        splits_of_case.setdefault(row["case_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of_case.values())
    assert {s for v in splits_of_case.values() for s in v} == {"train", "val", "test"}
    for record in records:
        s = split[record.case_id]
        name = f"{record.case_id}_z{record.z:03d}"
        image_path = tmp_path / "ds" / "images" / s / f"{name}.png"
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)[..., ::-1]  # RGB = channels 0..2
        assert image.dtype == np.uint8 and image.shape == record.image.shape
        assert np.abs(image / 255.0 - record.image).max() <= 0.5 / 255 + 1e-9
        boxes, classes = read_yolo_labels(
            tmp_path / "ds" / "labels" / s / f"{name}.txt", image.shape[1], image.shape[0]
        )
        expected = np.asarray(record.boxes, float).reshape(-1, 4)
        assert boxes.shape == expected.shape
        assert np.abs(boxes - expected).max(initial=0) < 0.5
        assert np.all(classes == 0)
    # read_split: the evaluation view of one split, lesion ids included
    by_name = {(r.case_id, r.z): r for r in records}
    for s in ("train", "val", "test"):
        for row in read_split(tmp_path / "ds", s):
            record = by_name[(row["case_id"], row["z"])]
            assert split[record.case_id] == s and row["image_path"].is_file()
            assert (
                np.abs(row["boxes"] - np.asarray(record.boxes, float).reshape(-1, 4)).max(initial=0)
                < 0.5
            )
            assert list(row["lesion_ids"]) == list(record.lesion_ids)


def test_export_coco_matches_yolo(tmp_path):
    records = _records(seed=5)
    split = patient_split([r.case_id for r in records], [0] * len(records), seed=0)
    export_yolo(records, tmp_path / "ds", split_of=split)
    for s in ("train", "val", "test"):
        coco = json.loads(
            export_coco(records, tmp_path / f"{s}.json", split=s, split_of=split).read_text()
        )
        expected_images = [r for r in records if split[r.case_id] == s]
        assert len(coco["images"]) == len(expected_images)  # negatives included
        assert any(r.boxes == [] for r in records)
        for image in coco["images"]:
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            coco_boxes = np.array(
                [
                    [
                        a["bbox"][0],
                        a["bbox"][1],
                        a["bbox"][0] + a["bbox"][2],
                        a["bbox"][1] + a["bbox"][3],
                    ]
                    for a in anns
                ]
            ).reshape(-1, 4)
            label = (
                tmp_path / "ds" / image["file_name"].replace("images/", "labels/")
            ).with_suffix(".txt")
            yolo_boxes, _ = read_yolo_labels(label, image["width"], image["height"])
            assert np.abs(coco_boxes - yolo_boxes).max(initial=0) < 0.5
            assert all(a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3]) for a in anns)
            assert all(a["category_id"] == 1 and a["iscrowd"] == 0 for a in anns)


def test_export_rejects_bad_boxes_and_supports_tiff(tmp_path):
    bad = SliceRecord(case_id="x", z=0, image=np.zeros((10, 10, 3)), boxes=[(5, 5, 5, 8)])
    with pytest.raises(ValueError):
        export_yolo([bad], tmp_path / "bad", split_of={"x": "train"})
    four = SliceRecord(case_id="x", z=1, image=np.full((8, 8, 4), 0.5), boxes=[(1, 1, 4, 4)])
    with pytest.raises(ValueError):
        export_yolo([four], tmp_path / "png4", split_of={"x": "train"})
    data_yaml = export_yolo([four], tmp_path / "tif", split_of={"x": "train"}, image_format="tiff")
    assert yaml.safe_load(data_yaml.read_text())["channels"] == 4
    import tifffile

    pages = tifffile.imread(tmp_path / "tif" / "images" / "train" / "x_z001.tiff")
    assert pages.shape == (4, 8, 8) and pages.dtype == np.uint8
    # 3 channels in TIFF: one RGB page, decoded by OpenCV exactly like the PNG
    rgb = np.random.default_rng(0).uniform(0, 1, (8, 8, 3))
    three = SliceRecord(case_id="y", z=2, image=rgb, boxes=[])
    export_yolo([three], tmp_path / "tif3", split_of={"y": "val"}, image_format="tiff")
    export_yolo([three], tmp_path / "png3", split_of={"y": "val"})
    from_tiff = cv2.imread(str(tmp_path / "tif3/images/val/y_z002.tiff"), cv2.IMREAD_COLOR)
    from_png = cv2.imread(str(tmp_path / "png3/images/val/y_z002.png"), cv2.IMREAD_COLOR)
    assert np.array_equal(from_tiff, from_png)


def test_patient_split_many_small_strata_keeps_global_fractions():
    cases = [f"c{i}" for i in range(30)]
    split = patient_split(cases, cases, seed=0)  # every case its own stratum
    counts = sorted(sum(v == s for v in split.values()) for s in ("train", "val", "test"))
    assert counts == [6, 6, 18]


def test_dataset_view_mirrors_a_listing_and_a_split_shared_by_val(tmp_path):
    """A training set given as a listing of "./" lines (a learning-curve share) is mirrored
    with its listing; a val split that names the training folder is mirrored once."""
    from crossmodal.detect.export import image_name
    from crossmodal.detect.yolo_folder import dataset_view
    from crossmodal.detect.yolo_folder import read_yaml
    from crossmodal.detect.yolo_folder import split_images

    records = _records()
    tiled = [SliceRecord(case_id=r.case_id, z=r.z, image=r.image, boxes=r.boxes, extra={"tile": 1})
             for r in records[:2]]
    split_of = {r.case_id: "train" for r in records}
    data_yaml = export_yolo(records + tiled, tmp_path / "ds", split_of=split_of)
    assert (tmp_path / "ds" / "images" / "train" / image_name(records[0].case_id, records[0].z, tile=1)).exists()
    chosen = sorted((tmp_path / "ds" / "images" / "train").iterdir())[:3]
    (tmp_path / "ds" / "share.txt").write_text("".join(f"./images/train/{p.name}\n" for p in chosen))
    data = read_yaml(data_yaml)
    data.update(train="share.txt", val="images/train")
    (tmp_path / "ds" / "share.yaml").write_text(yaml.safe_dump(data))
    assert split_images(data, "train") == chosen
    view_yaml = dataset_view(tmp_path / "ds" / "share.yaml", tmp_path / "view")
    view = read_yaml(view_yaml)
    assert split_images(view, "train") == [tmp_path / "view" / "images" / "train" / p.name for p in chosen]
    assert len(split_images(view, "val")) == len(split_images(data, "val")) == len(records) + 2
    assert all((tmp_path / "view" / "labels" / "train" / p.with_suffix(".txt").name).exists() for p in chosen)

"""The Part 1 design pieces of issue #11 that live in the lead's stages: a locked test
cohort (own tree, own seed, every slice, no shared patient), the edge-defined region and
the [CT, PET, grey(X)] controls."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from conftest import tiny_pelvis_params
from crossmodal.imaging.fusion import fuse
from crossmodal.imaging.fusion import to_gray
from crossmodal.imaging.preprocess import edge_region_box
from crossmodal.params import ParamsError
from crossmodal.params import load_params
from crossmodal.params import validate_params
from crossmodal.stages.ingest import check_disjoint
from crossmodal.stages.pelvis.datasets import export_datasets
from crossmodal.stages.pelvis.datasets import locked_test_split


def _pelvis_like(with_bones: bool = True):
    """A body ellipse 60 x 40 px (y half-axis 20, x half-axis 30) with two bone blobs
    at x = 20..26 and 54..60 of an 80 x 80 slice."""
    z, y, x = np.mgrid[0:6, 0:80, 0:80]
    body = ((y - 40) / 20.0) ** 2 + ((x - 40) / 30.0) ** 2 <= 1.0
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    if with_bones:
        for x0 in (20, 54):
            hu[:, 35:45, x0:x0 + 6] = 700.0
    return hu, body


def test_edge_region_spans_the_body_front_to_back_and_the_bones_side_to_side():
    hu, body = _pelvis_like()
    y0, y1, x0, x1 = edge_region_box(hu, body, margin=0)
    assert (y0, y1) == (20, 61)  # the body's outline (y = 40 +- 20)
    assert 18 <= x0 <= 21 and 59 <= x1 <= 62  # the bones' edges, not the body's (10..71)
    body_box = edge_region_box(*_pelvis_like(with_bones=False), margin=0)
    assert body_box[2] <= 11 and body_box[3] >= 70  # no bone: the body box
    assert edge_region_box(hu, body, margin=3) == (y0 - 3, y1 + 3, x0 - 3, x1 + 3)


def test_control_layout_keeps_ct_and_pet_and_puts_the_baseline_third():
    from crossmodal.imaging.petct import PreparedCase
    from crossmodal.imaging.petct import fuse_slice

    rng = np.random.default_rng(0)
    ct, pet = rng.uniform(0, 1, (1, 32, 32)).astype(np.float32), rng.uniform(0, 1, (1, 32, 32)).astype(np.float32)
    body = np.ones((1, 32, 32), bool)
    p = PreparedCase("C", ct, {"refined": pet * 10}, {"refined": pet}, body, body, body, (0, 32, 0, 32),
                     np.zeros((1, 32, 32), np.uint8), np.zeros((1, 32, 32), np.int32), {})
    options = {"weighted_average": {"weight": 0.5}}
    control, _ = fuse_slice(p, 0, {"method": "weighted_average", "layout": "ct_pet_fused"}, size=32, options=options)
    plain, _ = fuse_slice(p, 0, {"method": "weighted_average"}, size=32, options=options)
    np.testing.assert_allclose(control[..., 0], ct[0], atol=1e-5)
    np.testing.assert_allclose(control[..., 1], pet[0], atol=1e-5)
    expected = to_gray(fuse("weighted_average", ct[0], pet[0], weight=0.5))
    np.testing.assert_allclose(control[..., 2], expected, atol=1e-5)
    np.testing.assert_allclose(plain[..., 0], plain[..., 2], atol=1e-6)  # the baseline: one grey image


def test_locked_test_split_refuses_a_shared_patient():
    dev = pd.DataFrame({"patient": ["P1", "P2"], "case_id": ["C1", "C2"]})
    test = pd.DataFrame({"patient": ["P3", "P3", "P4"], "case_id": ["C3", "C3", "C4"]})
    split = locked_test_split(dev, test)
    assert list(split["case_id"]) == ["C3", "C4"] and set(split["split"]) == {"test"}
    with pytest.raises(ValueError, match="P2"):
        locked_test_split(dev, pd.DataFrame({"patient": ["P2"], "case_id": ["C9"]}))


def test_ingestion_stops_when_a_patient_is_in_both_cohorts(tmp_path):
    for folder, patients in (("dev", ["P1", "P2"]), ("test", ["P3"])):
        (tmp_path / folder).mkdir()
        pd.DataFrame({"case_id": [f"C{p}" for p in patients], "patient": patients}).to_csv(
            tmp_path / folder / "cases.csv", index=False)
    check_disjoint(tmp_path / "dev", tmp_path / "test")
    pd.DataFrame({"case_id": ["CX"], "patient": ["P2"]}).to_csv(tmp_path / "test" / "cases.csv", index=False)
    with pytest.raises(RuntimeError, match="P2"):
        check_disjoint(tmp_path / "dev", tmp_path / "test")


def test_params_rules_for_the_locked_test_cohort():
    params = load_params(REPO / "params.yaml")
    assert params["phantom"]["pelvis_test"]["seed"] != params["phantom"]["pelvis"]["seed"]
    same_seed = copy.deepcopy(params)
    same_seed["phantom"]["pelvis_test"]["seed"] = params["phantom"]["pelvis"]["seed"]
    with pytest.raises(ParamsError, match="pelvis_test.seed"):
        validate_params(same_seed)
    three = copy.deepcopy(params)
    three["detect"]["split"]["fractions"] = [0.6, 0.2, 0.2]
    with pytest.raises(ParamsError, match="split.fractions"):
        validate_params(three)
    no_section = copy.deepcopy(params)
    del no_section["phantom"]["pelvis_test"]
    with pytest.raises(ParamsError, match="test_root"):
        validate_params(no_section)


@pytest.fixture(scope="module")
def two_cohorts(tmp_path_factory, part1_stage):
    """The tiny development cohort's align_fuse output and a locked test cohort (own
    seed) aligned and fused on every slice."""
    from crossmodal.io.case import load_cases
    from crossmodal.io.cohort import ingest_dicom_cohort
    from crossmodal.phantom.cohort import generate_pelvis_cohort
    from crossmodal.stages.pelvis.align_fuse import run_align_fuse

    _cases, dev_out, cfg, _tables = part1_stage
    p = {**tiny_pelvis_params(n_patients=2), "seed": 4242}
    root = generate_pelvis_cohort(p, tmp_path_factory.mktemp("cohort_test") / "pelvis")
    ingest = tmp_path_factory.mktemp("ingest_test")
    ingest_dicom_cohort(root, ingest, modalities=["CT", "PT"], salt="test-salt")
    test_out = tmp_path_factory.mktemp("align_fuse_test")
    tables = run_align_fuse(load_cases(ingest), test_out, cfg, every_slice=True)
    return dev_out, test_out, tables, load_cases(ingest)


def test_locked_test_cohort_is_fused_on_every_slice(two_cohorts):
    _dev, _test_out, tables, cases = two_cohorts
    for case in cases:
        z = tables["slices"].loc[tables["slices"].case_id == case.case_id, "z"]
        assert sorted(z) == list(range(case.ct.GetSize()[2]))
    assert tables["fusion_quality"].empty
    assert {"region_y0", "region_y1", "region_x0", "region_x1"} <= set(tables["region_check"].columns)


def test_datasets_take_the_test_split_from_the_locked_cohort(two_cohorts, tmp_path):
    from crossmodal.detect.export import read_split

    dev_out, test_out, tables, cases = two_cohorts
    cfg = {"detectors": [{"name": "yolov8", "inputs": ["pet_only"]}], "inputs": ["pet_only"], "seeds": [0],
           "split": {"fractions": [0.75, 0.25], "seed": 1}, "train_slice_stride": 1}
    split = export_datasets(dev_out, tmp_path, cfg, class_names=["tumour", "node"], test_align_dir=test_out)
    assert set(split.loc[split.split == "test", "case_id"]) == {c.case_id for c in cases}
    assert set(split.loc[split.split != "test", "split"]) == {"train", "val"}
    test_images = read_split(tmp_path / "pet_only", "test")
    assert len(test_images) == len(tables["slices"])  # every slice of every test volume
    assert {i["case_id"] for i in read_split(tmp_path / "pet_only", "train")}.isdisjoint({c.case_id for c in cases})

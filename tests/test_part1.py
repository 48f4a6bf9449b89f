"""Part 1 imaging stage on the phantom: alignment improves, localisation keeps every lesion,
artifacts hold the boxes of the labels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO
from crossmodal.io.case import load_cases
from crossmodal.params import load_params
from crossmodal.part1 import load_fused
from crossmodal.part1 import run_align_fuse


@pytest.fixture(scope="module")
def stage(ingested, tmp_path_factory):
    cfg = copy.deepcopy(load_params(REPO / "params.yaml", "quick")["align_fuse"])
    cfg["inputs"] = {k: cfg["inputs"][k] for k in ("adaptive_region", "adaptive_no_crop", "pet_only", "dwt")}
    cfg["image_size"] = 64
    out = tmp_path_factory.mktemp("align_fuse")
    cases = load_cases(ingested)
    return cases, out, cfg, run_align_fuse(cases, out, cfg)


def test_refinement_reduces_alignment_error_below_a_pet_voxel(stage):
    _, _, _, tables = stage
    alignment = tables["alignment"]
    assert (alignment["error_after_mm"] < alignment["pet_voxel_mm"]).all()
    assert alignment["error_after_mm"].mean() < alignment["error_before_mm"].mean()


def test_localisation_never_cuts_a_lesion(stage):
    _, _, _, tables = stage
    region = tables["region_check"]
    assert (region["lesion_voxels"] > 0).all()
    assert (region["lesion_voxels_inside"] == region["lesion_voxels"]).all()
    assert (region["region_fraction_of_slice"] < 1.0).all()  # the crop really removes air/couch


def test_fused_artifacts_hold_images_and_label_boxes(stage):
    cases, out, cfg, tables = stage
    slices = tables["slices"]
    for case in cases:
        label = sitk.GetArrayFromImage(case.label)
        for name in cfg["inputs"]:
            art = load_fused(out / "fused" / name / f"{case.case_id}.npz")
            n = len(art["z"])
            assert art["images"].shape == (n, 64, 64, 3) and art["images"].dtype == np.uint8
            lesion_slices = {int(z) for z in np.flatnonzero(label.reshape(len(label), -1).any(axis=1))}
            assert lesion_slices <= set(art["z"].tolist())  # every lesion slice is an input
            with_boxes = {int(art["z"][k]) for k in np.unique(art["box_slice"])}
            assert with_boxes == lesion_slices
            b = art["boxes"]
            assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all() and b.min() >= 0 and b.max() <= 64
            assert (art["box_lesion"] > 0).all()
        assert len(slices[slices.case_id == case.case_id]) == n
    # the proposed input differs from its no-crop ablation
    a = load_fused(out / "fused" / "adaptive_region" / f"{cases[0].case_id}.npz")["images"]
    b = load_fused(out / "fused" / "adaptive_no_crop" / f"{cases[0].case_id}.npz")["images"]
    assert not np.array_equal(a, b)


def test_fusion_quality_table_covers_every_input(stage):
    _, _, cfg, tables = stage
    quality = tables["fusion_quality"]
    assert set(quality["input"]) == set(cfg["inputs"])
    assert quality[["EN", "SD", "SF", "MI_CT", "MI_PET", "SSIM_CT", "SSIM_PET", "QABF"]].notna().all().all()
    pet = quality[quality.input == "pet_only"]
    assert np.allclose(pet["SSIM_PET"], 1.0)

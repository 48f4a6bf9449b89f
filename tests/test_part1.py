"""Part 1 imaging stage on the phantom: alignment improves, localisation keeps every lesion,
artifacts hold the boxes of the labels."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from crossmodal.stages.pelvis import load_fused


def test_refinement_reduces_alignment_error_below_a_pet_voxel(part1_stage):
    _, _, _, tables = part1_stage
    alignment = tables["alignment"]
    assert (alignment["error_after_mm"] < alignment["pet_voxel_mm"]).all()
    assert alignment["error_after_mm"].mean() < alignment["error_before_mm"].mean()


def test_localisation_never_cuts_a_lesion(part1_stage):
    _, _, _, tables = part1_stage
    region = tables["region_check"]
    assert (region["lesion_voxels"] > 0).all()
    assert (region["lesion_voxels_inside"] == region["lesion_voxels"]).all()
    assert (region["region_fraction_of_slice"] < 1.0).all()  # the crop really removes air/couch


def test_fused_artifacts_hold_images_and_label_boxes(part1_stage):
    cases, out, cfg, tables = part1_stage
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


def test_fusion_quality_table_covers_every_input(part1_stage):
    _, _, cfg, tables = part1_stage
    quality = tables["fusion_quality"]
    assert set(quality["input"]) == set(cfg["inputs"])
    assert quality[["EN", "SD", "SF", "MI_CT", "MI_PET", "SSIM_CT", "SSIM_PET", "QABF"]].notna().all().all()
    pet = quality[quality.input == "pet_only"]
    assert np.allclose(pet["SSIM_PET"], 1.0)


def test_stage_outputs_do_not_depend_on_the_number_of_processes(part1_stage, tmp_path):
    from crossmodal.stages.pelvis.align_fuse import run_align_fuse

    cases, out, cfg, tables = part1_stage
    parallel = run_align_fuse(cases, tmp_path, cfg, jobs=2)
    for name, table in tables.items():
        assert table.equals(parallel[name]), name
    for name in cfg["inputs"]:
        for case in cases:
            serial_art = load_fused(out / "fused" / name / f"{case.case_id}.npz")
            parallel_art = load_fused(tmp_path / "fused" / name / f"{case.case_id}.npz")
            assert serial_art.keys() == parallel_art.keys()
            for key in serial_art:
                np.testing.assert_array_equal(serial_art[key], parallel_art[key], err_msg=f"{name} {key}")


def test_only_the_exported_inputs_are_written_with_the_same_tables(part1_stage, tmp_path):
    from crossmodal.stages.pelvis.align_fuse import run_align_fuse

    cases, out, cfg, tables = part1_stage
    export = list(cfg["inputs"])[1:3]  # not the first input, whose slices give the slice table
    subset = run_align_fuse(cases, tmp_path, cfg, export=export)
    assert sorted(p.name for p in (tmp_path / "fused").iterdir()) == sorted(export)
    for name, table in tables.items():  # fusion quality still covers every input
        assert table.equals(subset[name]), name


def test_stage_summaries_for_the_chapter(part1_stage):
    from crossmodal.report.align_fuse import region_summary
    from crossmodal.stages.pelvis.align_fuse import QUALITY_METRICS
    from crossmodal.stages.pelvis.align_fuse import alignment_summary
    from crossmodal.stages.pelvis.align_fuse import fusion_quality_summary

    cases, _, cfg, tables = part1_stage
    alignment = alignment_summary(tables["alignment"], seed=0)
    assert list(alignment.columns) == ["n", "error_before_mm", "error_after_mm", "error_after_max_mm",
                                       "pet_voxel_mm"]
    assert alignment.loc["all", "n"] == len(cases)
    region = region_summary(tables["region_check"]).iloc[0]
    assert region["cases"] == len(cases) and region["inside the region"] == region["lesion voxels"] > 0
    quality = fusion_quality_summary(tables["fusion_quality"], seed=0)
    assert list(quality.index) == list(cfg["inputs"]) and list(quality.columns) == ["n", *QUALITY_METRICS]
    assert (quality["n"] == len(cases)).all()  # one row per patient, not per slice


def test_lesion_table_on_the_ct_grid(part1_stage):
    cases, out, _, tables = part1_stage
    lesions = tables["lesions"].set_index("case_id")
    assert list(lesions.index) == [c.case_id for c in cases]
    for case in cases:
        label = sitk.GetArrayFromImage(case.label) > 0
        row = lesions.loc[case.case_id]
        assert row["lesion_slices"] == int(label.any(axis=(1, 2)).sum()) > 0
        assert row["lesions"] >= 1 and row["lesion_volume_ml"] > 0
        assert row["lesion_suvmax"] > 2  # hot on PET, read through the DICOM geometry
        assert (row["ct_slices"], row["pet_slices"]) == (case.ct.GetSize()[2], case.pet.GetSize()[2])


def test_figure_data_lets_the_page_draw_without_computing(part1_stage):
    from crossmodal.stages.pelvis.align_fuse import run_align_fuse

    cases, out, cfg, _ = part1_stage
    figure = dict(np.load(out / "figures" / "figure_case.npz"))
    case = cases[min(cfg["figure_case"], len(cases) - 1)]
    assert str(figure["case_id"]) == case.case_id
    ct = sitk.GetArrayFromImage(case.ct)
    assert figure["ct_hu"].shape == figure["pet_geometric"].shape == figure["pet_refined"].shape == ct.shape
    # the refined PET is the saved transform applied to PET: resampling it again gives the same volume
    saved = sitk.ReadTransform(str(out / "transforms" / f"{case.case_id}.tfm"))
    from crossmodal.io.geometry import resample_to_reference

    again = sitk.GetArrayFromImage(resample_to_reference(case.pet, case.ct, transform=saved))
    np.testing.assert_allclose(figure["pet_refined"], again, atol=1e-4)
    rows, n_inputs = figure["input_images"].shape[:2]
    assert n_inputs == len(cfg["inputs"]) and rows == len(figure["rows"]) >= 1
    assert int(figure["rows"][0]) == int(figure["lesion_z"]) and (figure["box_row"] == 0).any()
    montage = sorted(p.stem for p in (out / "figures" / "montage").glob("*.npz"))
    assert montage == [c.case_id for c in cases[:2]]


def test_page_figures_draw_from_stage_outputs(part1_stage):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal.report.align_fuse import inputs_figure
    from crossmodal.report.align_fuse import load_figure_case
    from crossmodal.report.align_fuse import registration_panel
    from crossmodal.report.align_fuse import step_figure
    from crossmodal.report.cohort import montage

    from crossmodal.report.common import COLUMN_INCHES

    _, out, cfg, _ = part1_stage
    case = load_figure_case(out)
    figures = {"steps": (step_figure(case), 4), "registration": (registration_panel(case), 6),
               "inputs": (inputs_figure(case), len(case["rows"]) * len(cfg["inputs"]))}
    drawn = montage(out, ct_window=[-160, 240], suv_display_max=10.0)
    assert len([ax for ax in drawn.axes if ax.get_images()]) == 2 * 4
    for name, (fig, n_axes) in {**figures, "montage": (drawn, len(drawn.axes))}.items():
        assert len(fig.axes) == n_axes, name
        # wider than the book's column, a figure is shrunk and its labels become unreadable
        assert fig.get_figwidth() <= COLUMN_INCHES + 1e-9, (name, fig.get_figwidth())
    plt.close("all")

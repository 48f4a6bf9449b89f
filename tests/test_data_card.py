"""The data card (Part 1, before any detector): ellipsoid rasterisation, per-candidate
features, the lesion-vs-mimic oracle on hand-made tables, and the stage end to end on a
few hand-made cases."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import REPO
from sklearn.metrics import average_precision_score
from sklearn.metrics import roc_auc_score

from crossmodal.io.case import Case
from crossmodal.io.geometry import rasterise_ellipsoids
from crossmodal.learn.oracle import candidate_features
from crossmodal.learn.oracle import candidate_voxels
from crossmodal.learn.oracle import grouped_folds
from crossmodal.learn.oracle import in_plane_extent
from crossmodal.learn.oracle import oracle_table
from crossmodal.learn.oracle import weighted_auc
from crossmodal.learn.oracle import weighted_average_precision
from crossmodal.params import load_params
from crossmodal.stages.pelvis import data_card

SPACING = (4.0, 4.0, 5.0)  # x, y, z mm
SIZE = (32, 32, 14)
ORIGIN = (-64.0, -64.0, -35.0)


def image(array: np.ndarray, *, origin=ORIGIN, spacing=SPACING) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.SetOrigin(origin)
    result.SetSpacing(spacing)
    return result


# ----------------------------------------------------------------------------- rasterisation


def test_rasterised_ellipsoids_are_the_voxel_centres_inside_them_on_any_grid():
    reference = sitk.Image(12, 10, 8, sitk.sitkFloat32)
    reference.SetOrigin((30.0, -20.0, 5.0))
    reference.SetSpacing((2.0, 3.0, 4.0))
    reference.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, -1))  # x and z run backwards
    ellipsoids = [{"centre_mm": [20.0, -5.0, -8.0], "radii_mm": [6.0, 7.0, 9.0]},
                  {"centre_mm": [12.0, 1.0, -14.0], "radii_mm": [3.0, 3.0, 5.0]},
                  {"centre_mm": [500.0, 0.0, 0.0], "radii_mm": [5.0, 5.0, 5.0]}]  # outside the grid
    mask = rasterise_ellipsoids(ellipsoids, reference)
    expected = np.zeros(mask.shape, bool)
    for z, y, x in np.ndindex(*mask.shape):
        point = np.asarray(reference.TransformIndexToPhysicalPoint((x, y, z)))
        expected[z, y, x] = any((((point - e["centre_mm"]) / e["radii_mm"]) ** 2).sum() <= 1
                                for e in ellipsoids)
    assert mask.dtype == bool and mask.shape == (8, 10, 12)
    assert expected.sum() > 20
    np.testing.assert_array_equal(mask, expected)
    assert not rasterise_ellipsoids([], reference).any()


# ----------------------------------------------------------------------------- features


def ball(shape, centre, radius_vox):
    zz, yy, xx = np.indices(shape)
    return ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= radius_vox ** 2


def test_features_of_a_known_sphere_and_a_tube():
    shape = (30, 30, 30)
    hu = np.full(shape, -100.0)  # fat everywhere around it
    suv = np.full(shape, 1.0)
    sphere = ball(shape, (15, 15, 15), 5)
    hu[sphere], suv[sphere] = 40.0, 8.0
    suv[15, 15, 15] = 12.0
    names = ["suv_max", "suv_mean", "suv_top_mean", "suv_contrast", "hu_mean", "hu_sd", "hu_p10", "hu_p90",
             "shell_fat_fraction", "elongation", "volume_ml"]
    c = candidate_voxels(sphere, hu, suv, (2.0, 2.0, 2.0), shell_mm=4.0, top_voxels=10)
    f = candidate_features(c, names)
    n = sphere.sum()
    assert f["suv_max"] == 12.0
    assert f["suv_top_mean"] == pytest.approx((12.0 + 9 * 8.0) / 10)
    assert f["suv_mean"] == pytest.approx((12.0 + (n - 1) * 8.0) / n)
    assert f["suv_contrast"] == pytest.approx(f["suv_mean"] - 1.0)
    assert (f["hu_mean"], f["hu_sd"], f["hu_p10"], f["hu_p90"]) == (40.0, 0.0, 40.0, 40.0)
    assert f["shell_fat_fraction"] == 1.0
    assert f["volume_ml"] == pytest.approx(n * 8.0 / 1000.0)
    assert 1.0 <= f["elongation"] < 1.1
    # the shell is a ring within 4 mm (2 voxels) around the sphere, never inside it
    assert not (c.shell & c.mask).any() and c.shell.sum() > c.mask.sum() / 2
    tube = np.zeros(shape, bool)
    tube[3:27, 14:17, 14:17] = True  # a ureter-like course along z
    assert candidate_features(candidate_voxels(tube, hu, suv, (2.0, 2.0, 2.0), shell_mm=4.0),
                              ["elongation"])["elongation"] > 5
    with pytest.raises(ValueError, match="unknown candidate features"):
        candidate_features(c, ["suv_max", "texture"])


def test_in_plane_extent_is_the_largest_slice_bounding_box():
    mask = np.zeros((5, 20, 20), bool)
    mask[1, 2:5, 3:5] = True  # small slice
    mask[2, 4:10, 6:9] = True  # largest: 6 rows x 3 columns
    assert in_plane_extent(mask, (5.0, 2.0, 3.0)) == (6, 12.0)
    assert in_plane_extent(mask, (5.0, 1.0, 3.0)) == (6, 9.0)  # 3 columns x 3 mm is wider in mm


# ----------------------------------------------------------------------------- the oracle


def test_weighted_auc_and_ap_match_sklearn_with_sample_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    score = np.round(rng.normal(size=60) + y, 1)  # ties on purpose
    weights = rng.integers(0, 4, (5, 60)).astype(float)
    aucs, aps = weighted_auc(y, score, weights), weighted_average_precision(y, score, weights)
    for w, auc, ap in zip(weights, aucs, aps):
        assert auc == pytest.approx(roc_auc_score(y, score, sample_weight=w))
        assert ap == pytest.approx(average_precision_score(y, score, sample_weight=w))
    assert np.isnan(weighted_auc(y, score, np.where(y == 1, 0.0, 1.0)[None])[0])


def hand_made_candidates(n_patients=16, seed=0) -> pd.DataFrame:
    """CT separates lesions from mimics perfectly; PET is the same for both."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for target in (1, 1, 0, 0, 0):
            rows.append({"patient": f"P{p:02d}", "target": target, "suv": rng.normal(6.0, 2.0),
                         "hu": rng.normal(40.0, 8.0) if target else rng.normal(-400.0, 80.0)})
    return pd.DataFrame(rows)


def test_folds_are_grouped_by_patient_and_stratified():
    table = hand_made_candidates()
    folds = grouped_folds(table["target"], table["patient"], n_splits=4, n_repeats=3, seed=5)
    assert folds.shape == (3, len(table))
    for fold in folds:
        for k in np.unique(fold):
            test, train = set(table["patient"][fold == k]), set(table["patient"][fold != k])
            assert test and not test & train
            assert table["target"][fold == k].nunique() == 2
    assert not np.array_equal(folds[0], folds[1])  # each repeat draws its own folds
    np.testing.assert_array_equal(folds, grouped_folds(table["target"], table["patient"], n_splits=4,
                                                       n_repeats=3, seed=5))
    assert len(np.unique(grouped_folds([1, 0, 1, 0], ["a", "a", "b", "b"], n_splits=5)[0])) == 2


def test_oracle_finds_ct_separates_and_pet_does_not():
    table = hand_made_candidates()
    result, scores = oracle_table(table, {"PET": ["suv"], "CT": ["hu"], "PET+CT": ["suv", "hu"]},
                                  compare=("PET+CT", "PET"), n_splits=4, n_repeats=2, seed=1, C=1.0,
                                  n_boot=200, boot_seed=2, ci=0.95)
    result = result.set_index("features")
    assert result.loc["CT", "AUC"] > 0.99 and result.loc["CT", "AP"] > 0.99
    assert 0.3 < result.loc["PET", "AUC"] < 0.7
    # (out of fold, an uninformative feature tends to score a little below 0.5)
    assert result.loc["PET", "AUC_ci_high"] < result.loc["CT", "AUC_ci_low"]
    assert result.loc["PET+CT", "AUC"] > 0.95
    gain = result.loc["PET+CT minus PET"]
    assert gain["AUC"] == pytest.approx(result.loc["PET+CT", "AUC"] - result.loc["PET", "AUC"])
    assert 0 < gain["AUC_ci_low"] <= gain["AUC"] <= gain["AUC_ci_high"]
    assert (result["patients"] == 16).all() and (result["lesions"] == 32).all()
    assert set(scores) == {"PET", "CT", "PET+CT"} and all(len(s) == len(table) for s in scores.values())


# ----------------------------------------------------------------------------- the stage


def hand_made_case(i: int, *, with_truth: bool) -> Case:
    """A 32x32x14 CT/PET pair: fat body, a hot tumour (label 1) and a node (label 2) on CT
    water-ish density, a hot bladder (water), a hot ureter focus (a tube along z) and a hot
    bowel focus with gas, the mimics recorded as ellipsoids in the truth sidecar."""
    shape = SIZE[::-1]
    hu = np.full(shape, -100.0, np.float32)
    suv = np.full(shape, 0.5, np.float32)
    label = np.zeros(shape, np.uint8)
    ct = image(hu)

    def mm(index_zyx):
        return list(ct.TransformIndexToPhysicalPoint([int(v) for v in index_zyx[::-1]]))

    tumour = ball(shape, (7, 12, 12 + i % 2), 2 + (i % 2))
    node = ball(shape, (7, 22, 8), 1)
    hu[tumour], suv[tumour], label[tumour] = 45.0, 9.0 + i, 1
    hu[node], suv[node], label[node] = 35.0, 4.0, 2
    mimics = [
        {"id": 1, "kind": "bladder", "suv_max": 30.0, "ct_hu": 5.0,
         "ellipsoids": [{"centre_mm": mm((7, 24, 22)), "radii_mm": [14.0, 12.0, 10.0]}]},
        {"id": 2, "kind": "ureter_focus", "suv_max": 8.0, "ct_hu": 10.0,
         "ellipsoids": [{"centre_mm": mm((7, 10, 26)), "radii_mm": [3.0, 3.0, 20.0]}]},
        {"id": 3, "kind": "bowel_focus", "suv_max": 6.0, "ct_hu": -600.0,
         "ellipsoids": [{"centre_mm": mm((3, 6, 6)), "radii_mm": [8.0, 8.0, 6.0]}]},
    ]
    ct = image(hu)
    for mimic, value_hu, value_suv in zip(mimics, (5.0, 10.0, -600.0), (25.0, 8.0 + i, 6.0)):
        inside = rasterise_ellipsoids(mimic["ellipsoids"], ct) & (label == 0)
        hu[inside], suv[inside] = value_hu, value_suv
    lesions = [{"id": 1, "kind": "tumour", "suv_max": 9.0 + i, "site": "cervix", "pet_faint": False,
                "abuts_bladder": i == 0, "volume_ml": 1.0, "centroid_mm": mm((7, 12, 12))},
               {"id": 2, "kind": "node", "suv_max": 4.0, "site": "fat", "pet_faint": i == 1,
                "abuts_bladder": False, "volume_ml": 0.1, "centroid_mm": mm((7, 22, 8))}]
    truth = {"lesions": lesions, "mimics": mimics,
             "phenomena": {"ureter_foci": 1, "bowel_foci": 1, "fat_nodes": 1, "pet_faint_nodes": int(i == 1),
                           "tumour_abuts_bladder": i == 0, "bowel_shift_mm": 2.0 + i}}
    return Case(case_id=f"case{i}", patient=f"P{i}", images={"CT": image(hu), "PT": image(suv)},
                labels={"CT": image(label)}, truth=truth if with_truth else None)


@pytest.fixture()
def sources(monkeypatch):
    """A stand-in for crossmodal.phantom.sources: every phantom.pelvis key sourced."""
    params = load_params(REPO / "params.yaml", "quick")
    module = types.ModuleType("crossmodal.phantom.sources")
    module.PELVIS_PARAMETER_SOURCES = {key: "our estimate" for key in params["phantom"]["pelvis"]}
    module.REFERENCES = {"Doe 2020": "Doe J. A reference. J Imaging 2020;1:1-2."}
    monkeypatch.setitem(sys.modules, "crossmodal.phantom.sources", module)
    return module.PELVIS_PARAMETER_SOURCES


@pytest.fixture()
def card_inputs(tmp_path):
    ingest, align = tmp_path / "ingest", tmp_path / "align"
    (align / "transforms").mkdir(parents=True)
    rows = []
    for i in range(4):
        case = hand_made_case(i, with_truth=i < 3)
        case.save(ingest / "cases" / case.case_id)
        sitk.WriteTransform(sitk.Euler3DTransform(), str(align / "transforms" / f"{case.case_id}.tfm"))
        rows.append({"case_id": case.case_id, "lesion_voxels": 1, "region_y0": 4, "region_y1": 28,
                     "region_x0": 0, "region_x1": 32})
    pd.DataFrame(rows).to_csv(align / "region_check.csv", index=False)
    params = load_params(REPO / "params.yaml", "quick")
    params["compute"]["jobs"] = 1
    params["align_fuse"]["image_size"] = 64
    params["data_card"].update(n_boot=100, oracle={"n_splits": 2, "n_repeats": 1, "seed": 0, "C": 1.0})
    return params, ingest, align


def test_stage_writes_the_data_card(card_inputs, sources, tmp_path):
    params, ingest, align = card_inputs
    out, metrics = tmp_path / "card", tmp_path / "metrics" / "data_card.json"
    tables = data_card.run(params, ingest_dir=ingest, align_dir=align, out=out, metrics=metrics)
    for name in ("parameters", "references", "phenomena", "sizes", "sizes_summary", "candidates", "oracle"):
        assert (out / f"{name}.csv").is_file()
    cand = tables["candidates"]
    # 4 cases x (tumour + node); mimics only from the 3 cases with truth
    assert (cand["target"] == 1).sum() == 8
    assert sorted(cand.loc[cand["target"] == 0, "kind"].value_counts().items()) == [
        ("bladder", 3), ("bowel_focus", 3), ("ureter_focus", 3)]
    assert not (cand["case_id"].eq("case3") & cand["target"].eq(0)).any()
    tumour = cand[cand["kind"] == "cervical_tumour"].set_index("case_id")
    assert tumour.loc["case0", "extent_mm"] == 5 * 4.0  # radius 2 voxels
    assert tumour.loc["case1", "extent_px"] == pytest.approx(7 * 64 / 32)  # crop 24 x 32 -> 64 px
    assert tumour.loc["case1", "suv_max"] == pytest.approx(10.0)
    assert tumour.loc["case0", "abuts_bladder"] and tumour.loc["case0", "site"] == "cervix"
    ureter = cand[cand["kind"] == "ureter_focus"]
    assert (ureter["elongation"] > 2).all() and (ureter["hu_mean"] == 10.0).all()
    bowel = cand[cand["kind"] == "bowel_focus"]
    assert (bowel["hu_p10"] < -500).all()
    summary = tables["sizes_summary"].set_index("kind")
    assert summary.loc["cervical_tumour", "share_at_least_target"] == pytest.approx(0.5)  # 10 px vs 14 px
    assert summary.loc["cervical_tumour", "crop"] == "localised region"
    phen = tables["phenomena"].set_index("name")
    assert phen.loc["ureter_foci", "total"] == 3 and phen.loc["pet_faint_nodes", "patients_with"] == 1
    assert phen.loc["tumour_abuts_bladder", "share"] == pytest.approx(1 / 3)
    assert np.isnan(phen.loc["bowel_shift_mm", "total"]) and phen.loc["bowel_shift_mm", "median"] == 3.0
    assert phen.loc["node, fat, PET-faint", "total"] == 1 and phen.loc["bladder", "patients_with"] == 3
    oracle = tables["oracle"]
    assert list(oracle["target"].unique()) == ["lesion", "cervical_tumour"]
    assert oracle["AUC"].between(-1, 1).all()
    flat = json.loads(metrics.read_text())
    assert {"oracle/PET/AUC", "oracle/CT/AUC_ci_low", "oracle/PET+CT_minus_PET/AUC",
            "oracle_cervical_tumour/PET+CT/AP", "sizes/cervical_tumour/share_at_least_target_px"} <= set(flat)
    assert flat["candidates/mimics"] == 9 and flat["patients"] == 4
    assert set(tables["parameters"]["parameter"]) == set(sources)
    check_page_draws(tables, target_px=params["data_card"]["target_px"])


def check_page_draws(tables, *, target_px):
    """The page's report functions format and draw the stage's tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal.report import data_card as page

    view = page.oracle_view(tables["oracle"])
    assert view.loc[("lesion", "PET+CT minus PET"), "AUC"].startswith(("+", "-"))
    sentence = page.fusion_gain_sentence(tables["oracle"])
    lesion = tables["oracle"].set_index(["target", "features"]).loc["lesion"]
    assert f"{lesion.loc['PET', 'AUC']:.3f}" in sentence and "not a ceiling" in sentence
    assert "1 cases have no truth sidecar" in page.truth_sentence(tables["candidates"])
    assert page.crop_sentence(tables["sizes_summary"]) == "Detector pixels through: localised region."
    assert "share >= 12 px" in page.sizes_view(tables["sizes_summary"]).columns
    assert len(page.phenomena_view(tables["phenomena"])) == len(tables["phenomena"])
    for figure in (page.candidates_figure(tables["candidates"]),
                   page.sizes_figure(tables["sizes"], target_px=target_px)):
        assert figure.axes
        plt.close(figure)


def test_without_region_columns_the_whole_slice_is_used_and_said(card_inputs):
    params, ingest, align = card_inputs
    pd.read_csv(align / "region_check.csv")[["case_id", "lesion_voxels"]].to_csv(align / "region_check.csv")
    assert data_card.read_regions(align) == {}
    case = Case.load(ingest / "cases" / "case1")
    rows = data_card.case_candidates(case, align_dir=align, cfg=params["data_card"],
                                     label_names={1: "cervical_tumour", 2: "lymph_node"}, image_size=64,
                                     regions=data_card.read_regions(align))
    assert {r["crop"] for r in rows} == {data_card.WHOLE_SLICE}
    assert rows[0]["extent_px"] == pytest.approx(rows[0]["extent_ct_px"] * 64 / 32)


def test_parameter_table_fails_loudly_without_sources(monkeypatch, sources):
    phantom = {"seed": 1, "hu": {"fat": -100, "muscle": 50}, "made_up_phenomenon": [0, 2]}
    monkeypatch.setitem(sources, "seed", "study design")
    with pytest.raises(KeyError, match="made_up_phenomenon"):
        data_card.parameter_table(phantom)
    monkeypatch.setitem(sources, "made_up_phenomenon", "our estimate")
    table = data_card.parameter_table(phantom).set_index("parameter")
    assert table.loc["hu", "value"] == '{"fat": -100, "muscle": 50}'
    assert table.loc["seed", "source"] == "study design"
    monkeypatch.setitem(sys.modules, "crossmodal.phantom.sources", None)  # the module cannot be imported
    with pytest.raises(ImportError):
        data_card.parameter_table(phantom)
    assert data_card.parameter_table(None).empty


def test_the_reference_table_lists_exactly_the_references_the_parameter_sources_cite():
    from crossmodal.phantom.sources import PELVIS_PARAMETER_SOURCES
    from crossmodal.phantom.sources import REFERENCES
    from crossmodal.phantom.sources import WASSERTHAL_2023
    from crossmodal.stages.pelvis.data_card import reference_table

    table = reference_table({"seed": 1})
    cited = {c for c in REFERENCES if any(c in source for source in PELVIS_PARAMETER_SOURCES.values())}
    assert set(table["citation"]) == cited and len(cited) >= 4
    assert WASSERTHAL_2023 not in cited  # cited by the hybrid cohort's sources only
    assert reference_table(None).empty


def test_a_hybrid_sections_parameters_take_the_sources_of_where_each_value_comes_from():
    from crossmodal.phantom.sources import HYBRID_PELVIS_PARAMETER_SOURCES
    from crossmodal.phantom.sources import PELVIS_PARAMETER_SOURCES
    from crossmodal.phantom.sources import WASSERTHAL_2023

    params = load_params(REPO / "params.yaml")
    base, hybrid = params["phantom"]["pelvis"], dict(params["phantom"]["pelvis_real_anatomy"])
    table = data_card.parameter_table(hybrid, base).set_index("parameter")
    assert table.loc["crop_structures", "source"] == HYBRID_PELVIS_PARAMETER_SOURCES["crop_structures"]
    assert table.loc["tumour_radius_mm", "source"] == PELVIS_PARAMETER_SOURCES["tumour_radius_mm"]  # the base's
    assert table.loc["seed", "value"] == str(hybrid["seed"])  # its own value over the base's
    assert table.loc["seed", "source"] == HYBRID_PELVIS_PARAMETER_SOURCES["seed"]
    # A fork's section that sets a value of the base must say where that value comes from.
    hybrid["tumour_radius_mm"] = [6.0, 15.0]
    with pytest.raises(KeyError, match=r"the section's `sources`.*tumour_radius_mm"):
        data_card.parameter_table(hybrid, base)
    hybrid["sources"] = {"tumour_radius_mm": "our estimate: lung tumours of T1-T2 size"}
    table = data_card.parameter_table(hybrid, base).set_index("parameter")
    assert table.loc["tumour_radius_mm", "source"].startswith("our estimate: lung")
    assert "sources" not in table.index
    # the simulated body's grids, geometry and mimics: real anatomy replaces them
    assert not set(table.index) & data_card.HYBRID_UNUSED_BASE_KEYS and "ct_size" not in table.index
    assert "ct_size" in data_card.parameter_table(base).set_index("parameter").index
    assert WASSERTHAL_2023 in set(data_card.reference_table(hybrid, base)["citation"])

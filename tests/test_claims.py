"""The pre-specified Part 1 analysis: Holm across the family, references chosen on
validation, adjusted verdicts, "thesis value in CI?", on hand-made evaluation tables."""

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dvc_deps import REPO

from crossmodal.params import ParamsError
from crossmodal.params import load_params
from crossmodal.report.claims import claims_view
from crossmodal.report.claims import detector_plan
from crossmodal.report.claims import reading_sentence
from crossmodal.stages.pelvis import claims as stage
from crossmodal.stats.multiplicity import adjust
from crossmodal.stats.multiplicity import holm
from crossmodal.stats.verdict import adjusted_verdict
from crossmodal.stats.verdict import thesis_in_ci

TUMOUR = "AP50_cervical_tumour"
FP = "fp_per_patient_at_sens"


# ----------------------------------------------------------------------------- Holm, verdicts


def test_holm_on_a_known_example():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_is_monotone_capped_and_leaves_nan_out_of_the_family():
    p = np.array([0.2, np.nan, 0.01, 0.6, 0.03])
    adjusted = holm(p)
    assert np.isnan(adjusted[1])
    # m = 4 defined p-values: 4*0.01, max(0.04, 3*0.03), max(0.09, 2*0.2), max(0.4, 1*0.6)
    np.testing.assert_allclose(adjusted[[2, 4, 0, 3]], [0.04, 0.09, 0.4, 0.6])
    assert (adjusted[np.isfinite(adjusted)] >= p[np.isfinite(p)]).all()
    np.testing.assert_array_equal(holm([0.5, 0.9]), [1.0, 1.0])
    assert np.isnan(holm([np.nan, np.nan])).all() and holm([]).shape == (0,)
    np.testing.assert_array_equal(adjust([0.01, 0.2], "none"), [0.01, 0.2])
    with pytest.raises(ValueError, match="unknown multiplicity rule"):
        adjust([0.1], "bonferonni")


def test_adjusted_verdict_reads_the_adjusted_p_value_and_the_side():
    assert adjusted_verdict(0.1, 0.01, 0.02, 0.2, alpha=0.05) == "supported"
    assert adjusted_verdict(-0.1, 0.01, -0.2, -0.02, alpha=0.05) == "contradicted"
    # a CI that excludes 0 is not enough once the family is adjusted
    assert adjusted_verdict(0.1, 0.08, 0.01, 0.2, alpha=0.05) == "inconclusive"
    # lower is better (false positives): a decrease is the improvement
    assert adjusted_verdict(-2.0, 0.001, -3.0, -1.0, alpha=0.05, higher_is_better=False) == "supported"
    assert adjusted_verdict(2.0, 0.001, 1.0, 3.0, alpha=0.05, higher_is_better=False) == "contradicted"
    assert adjusted_verdict(np.nan, np.nan, np.nan, np.nan, alpha=0.05) == "not measurable"
    assert adjusted_verdict(0.1, np.nan, 0.02, 0.2, alpha=0.05) == "not measurable"


def test_thesis_in_ci():
    assert thesis_in_ci(0.0606, 0.01, 0.1) is True
    assert thesis_in_ci(0.089, -0.05, 0.05) is False
    assert thesis_in_ci(0.05, 0.05, 0.07) is True  # the ends belong to the interval
    assert np.isnan(thesis_in_ci(None, 0.0, 1.0))
    assert np.isnan(thesis_in_ci("fewer false positives", 0.0, 1.0))
    assert np.isnan(thesis_in_ci(0.06, np.nan, 0.1))


# ----------------------------------------------------------------------------- hand-made evaluation


@pytest.fixture(scope="module")
def params():
    p = copy.deepcopy(load_params(REPO / "params.yaml"))
    p["detect"]["detectors"] = [{"name": "det_a", "inputs": "all"}, {"name": "det_b", "inputs": "all"}]
    return p


def metrics_frame() -> pd.DataFrame:
    """Two detectors; on validation pet_only beats ct_only and pca beats dwt, on test the
    other way round (the test must never choose)."""
    rows = []
    for detector in ("det_a", "det_b"):
        for name, val_ap, test_ap in (("adaptive_region", 0.7, 0.7), ("ct_only", 0.2, 0.6), ("pet_only", 0.5, 0.3),
                                      ("pca", 0.45, 0.2), ("dwt", 0.3, 0.55), ("concat_ct_pet_ct", 0.6, 0.6)):
            rows.append({"detector": detector, "input": name, "seeds": 3, "test_patients": 100,
                         TUMOUR: test_ap, f"{TUMOUR}_ci_low": test_ap - 0.1, f"{TUMOUR}_ci_high": test_ap + 0.1,
                         f"val_{TUMOUR}": val_ap, "val_AP50": val_ap, "AP50": test_ap, FP: 3.0})
    return pd.DataFrame(rows)


def differences_frame() -> pd.DataFrame:
    rows = []
    for detector in ("det_a", "det_b"):
        for name in ("ct_only", "pet_only", "pca", "dwt", "concat_ct_pet_ct"):
            # det_a clearly better than pet_only and pca; everything else inconclusive
            strong = detector == "det_a" and name in ("pet_only", "pca")
            diff, p = (0.30, 0.001) if strong else (0.05, 0.30)
            for metric in (TUMOUR, "AP50_lymph_node", "AP50"):
                rows.append({"detector": detector, "input": name, "metric": metric, "difference": diff,
                             "ci_low": diff - 0.1, "ci_high": diff + 0.1, "p_value": p})
            fp = (-2.0, -3.0, -1.0, 0.002) if detector == "det_a" else (np.nan, np.nan, np.nan, np.nan)
            rows.append({"detector": detector, "input": name, "metric": FP, "difference": fp[0],
                         "ci_low": fp[1], "ci_high": fp[2], "p_value": fp[3]})
    return pd.DataFrame(rows)


def test_the_reference_is_chosen_on_validation_even_when_test_says_otherwise(params):
    analysis = stage.resolved_analysis(params)
    table = stage.claims_table(metrics_frame(), differences_frame(), proposed="adaptive_region", analysis=analysis)
    chosen = table.set_index(["claim", "detector"])["reference"]
    assert chosen["C1", "det_a"] == "pet_only"  # best on validation; ct_only is best on test
    assert chosen["C2", "det_a"] == "pca"  # dwt is best on test
    assert chosen["C3", "det_a"] == "pet_only"
    rows = metrics_frame().set_index("input").query("detector == 'det_a'")
    assert stage.choose_reference(rows, ["ct_only", "pet_only"], TUMOUR, higher_is_better=False) == "ct_only"
    assert stage.choose_reference(rows, ["nope", "dwt"], TUMOUR, higher_is_better=True) == "dwt"
    assert stage.choose_reference(rows, ["nope"], TUMOUR, higher_is_better=True) is None
    with pytest.raises(KeyError, match="val_AP50_95"):
        stage.choose_reference(rows, ["ct_only", "pet_only"], "AP50_95", higher_is_better=True)


def test_claims_table_adjusts_the_family_and_computes_every_verdict(params):
    analysis = stage.resolved_analysis(params)
    table = stage.claims_table(metrics_frame(), differences_frame(), proposed="adaptive_region", analysis=analysis)
    rows = table.set_index(["claim", "detector"])
    # family: C1, C2 for both detectors, C3 for det_a; det_b's C3 is NaN and leaves it
    family = table[table.claim != "C4"]
    assert family["p_holm"].notna().sum() == 5
    np.testing.assert_allclose(family["p_holm"], holm(family["p_value"].where(family["ours"].notna())))
    assert rows.loc[("C1", "det_a"), "p_holm"] == pytest.approx(0.001 * 5)
    assert rows.loc[("C1", "det_a"), "verdict"] == "supported"
    assert rows.loc[("C2", "det_a"), "verdict"] == "supported"
    assert rows.loc[("C3", "det_a"), "verdict"] == "supported"  # fewer FP per patient
    assert rows.loc[("C1", "det_b"), "verdict"] == "inconclusive"
    assert rows.loc[("C3", "det_b"), "verdict"] == "not measurable"  # FROC never reached the sensitivity
    assert np.isnan(rows.loc[("C3", "det_b"), "p_holm"])
    # thesis values under our absolute reading: C1 0.0606 in [0.2, 0.4]? no; C2 det_b 0.089 in [-0.05, 0.15]
    assert rows.loc[("C1", "det_a"), "thesis_in_ci"] is False
    assert rows.loc[("C2", "det_b"), "thesis_in_ci"] is True
    assert pd.isna(rows.loc[("C3", "det_a"), "thesis_in_ci"])
    c4 = rows.loc[("C4", "all")]
    assert c4["verdict"] == "inconclusive" and c4["ours"] == pytest.approx(0.5)
    assert (table["test_patients"] == 100).all() and (table["seeds"] == 3).all()


def test_c4_is_supported_only_when_c1_and_c2_are_for_every_detector(params):
    analysis = stage.resolved_analysis(params)
    differences = differences_frame()
    differences.loc[differences.metric == TUMOUR, ["difference", "ci_low", "ci_high", "p_value"]] = [0.3, 0.2, 0.4, 0.001]
    table = stage.claims_table(metrics_frame(), differences, proposed="adaptive_region", analysis=analysis)
    assert table.set_index("claim").loc["C4", "verdict"] == "supported"


def test_relative_reading_compares_the_thesis_share_of_our_reference(params):
    p = copy.deepcopy(params)
    p["detect"]["analysis"]["thesis_reading"] = "relative"
    table = stage.claims_table(metrics_frame(), differences_frame(), proposed="adaptive_region",
                               analysis=stage.resolved_analysis(p)).set_index(["claim", "detector"])
    # det_a C1 reference pet_only, test AP 0.3: +6.06 % relative is +0.01818 absolute
    assert table.loc[("C1", "det_a"), "thesis_compared"] == pytest.approx(0.0606 * 0.3)
    assert table.loc[("C1", "det_a"), "thesis"] == pytest.approx(0.0606)
    assert "relative" in reading_sentence("relative") and "our reading" in reading_sentence("absolute").lower()


def test_the_stage_writes_the_analysis_claims_beside_and_dvc_metrics(params, tmp_path):
    (tmp_path / "eval").mkdir()
    metrics_frame().to_csv(tmp_path / "eval" / "metrics.csv", index=False)
    differences_frame().to_csv(tmp_path / "eval" / "differences.csv", index=False)
    table = stage.run(params, eval_dir=tmp_path / "eval", out=tmp_path / "claims",
                      metrics=tmp_path / "metrics" / "claims.json")
    assert {"C1", "C2", "C3", "C4"} == set(table["claim"])
    analysis = pd.read_csv(tmp_path / "claims" / "analysis.csv")
    assert list(analysis["claim"]) == ["C1", "C2", "C3", "C4"]
    assert set(analysis["primary metric"][:3]) == {TUMOUR, FP}
    assert (analysis["family size"] == 6).all() and (analysis["correction"][:3] == "holm").all()
    assert "validation" in analysis.set_index("claim").loc["C1", "reference rule"]
    beside = pd.read_csv(tmp_path / "claims" / "beside.csv")
    assert set(beside["metric"]) == {"AP50_lymph_node", "AP50", TUMOUR}
    assert set(beside.query("kind == 'secondary'")["claim"]) == {"C1", "C2"}  # not beside C3's FP
    assert set(beside.query("kind == 'control'")["comparison"]) == {"adaptive_region - concat_ct_pet_ct"}
    headline = json.loads((tmp_path / "metrics" / "claims.json").read_text())  # what `dvc metrics show` prints
    # one verdict per claim over its detectors: det_a supported C1-C3, det_b inconclusive / not measurable
    assert headline == {"C1": "inconclusive", "C2": "inconclusive", "C3": "supported", "C4": "inconclusive"}
    assert table.set_index(["claim", "detector"]).loc[("C1", "det_a"), "verdict"] == "supported"
    # the page's table reads the CSV back
    view = claims_view(pd.read_csv(tmp_path / "claims" / "claims.csv"))
    assert list(view.columns) == ["claim", "detector", "thesis says", "comparison", "thesis value",
                                  "ours [95 % CI]", "p", "Holm p", "verdict", "thesis value in CI?", "sanity gate"]
    shown = view.set_index(["claim", "detector"])
    assert shown.loc[("C1", "det_a"), "thesis value in CI?"] == "no"
    assert shown.loc[("C2", "det_b"), "thesis value in CI?"] == "yes"
    assert shown.loc[("C3", "det_a"), "thesis value"] == "no number"


def test_comparison_metrics_list_what_the_evaluate_stage_must_difference(params):
    assert stage.comparison_metrics(params) == [TUMOUR, FP, "AP50_lymph_node", "AP50"]
    assert stage.planned_family(params, stage.resolved_analysis(params)) == [
        ("C1", "det_a"), ("C1", "det_b"), ("C2", "det_a"), ("C2", "det_b"), ("C3", "det_a"), ("C3", "det_b")]


def test_detector_plan_comes_from_params(params):
    plan = detector_plan(params)
    assert list(plan.index) == ["det_a", "det_b"]
    assert plan.loc["det_a", "inputs"] == ", ".join(params["detect"]["inputs"])


def params_file_with(tmp_path, dotted: tuple, value) -> Path:
    """The repository's params.yaml with the key at ``dotted`` set to ``value``, written to tmp_path."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    node = raw
    for part in dotted[:-1]:
        node = node[part]
    node[dotted[-1]] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("dotted, value, key, message", [
    (("claims", "C1", "references"), ["ct_only", "nope"], "detect.analysis.claims.C1.references",
     "'nope' not in align_fuse.inputs"),
    (("primary_class",), "tumour", "detect.analysis.primary_class", "'tumour' not in cohort.pelvis.label_names"),
    (("controls",), {"C9": ["pca"]}, "detect.analysis.controls", "'C9' not in detect.analysis.claims"),
    (("claims", "C3", "better"), "fewer", "detect.analysis.claims.C3.better", "'higher' or 'lower'"),
    (("multiplicity",), "bonferonni", "detect.analysis.multiplicity", "'holm' or 'none'"),
])
def test_the_analysis_names_only_known_inputs_classes_and_claims(tmp_path, dotted, value, key, message):
    path = params_file_with(tmp_path, ("detect", "analysis", *dotted), value)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert re.search(rf"^{re.escape(str(path))}: {re.escape(key)}: .*{message}", str(caught.value),
                     flags=re.MULTILINE), str(caught.value)


def test_a_comparator_that_found_no_lesion_is_not_measurable_not_beaten():
    from crossmodal.stages.pelvis.claims import gate_outcome

    metrics = pd.DataFrame({"detector": ["d", "d", "d"], "input": ["prop", "good", "blind"],
                            "val_AP50_tumour": [0.30, 0.20, 0.0], "AP50_tumour_ci_low": [0.0, 0.0, 0.5]})
    analysis = {"primary_class": "tumour", "gate": {"min_val_ap": 0.05}}
    assert gate_outcome(metrics, "d", ["prop", "good"], analysis) == "passed"
    assert gate_outcome(metrics, "d", ["prop", "blind"], analysis) == "failed: blind"
    assert gate_outcome(metrics, "d", ["prop", "blind"], {"primary_class": "tumour"}) == "passed"  # no gate


def test_a_gated_comparison_leaves_the_family_and_is_not_measurable(params):
    analysis = stage.resolved_analysis(params)
    metrics = metrics_frame()
    blind = (metrics.detector == "det_a") & metrics.input.isin(["ct_only", "pet_only"])
    metrics.loc[blind, f"val_{TUMOUR}"] = 0.0  # neither single modality found anything on validation
    table = stage.claims_table(metrics, differences_frame(), proposed="adaptive_region", analysis=analysis)
    rows = table.set_index(["claim", "detector"])
    assert rows.loc[("C1", "det_a"), "verdict"] == "not measurable"  # not "supported": nothing was beaten
    assert rows.loc[("C1", "det_a"), "gate"] == "failed: ct_only"  # the reference chosen (a tie: the first)
    assert rows.loc[("C1", "det_a"), "p_holm"] == 1.0  # stays in the family with p = 1
    assert table[table.claim != "C4"]["p_holm"].notna().sum() == 5  # the family keeps its size
    assert rows.loc[("C4", "all"), "verdict"] == "not measurable"  # an unmeasured row is no agreement


def test_too_few_test_patients_give_no_verdict_however_small_the_p_value(params):
    from crossmodal.stages.pelvis.claims import gate_outcome

    analysis = stage.resolved_analysis(params)
    assert analysis["min_test_patients"] == 10
    metrics = metrics_frame()
    assert gate_outcome(metrics, "det_a", ["adaptive_region", "pet_only"], analysis, test_patients=9) == (
        "failed: 9 test patients < 10")
    assert gate_outcome(metrics, "det_a", ["adaptive_region", "pet_only"], analysis, test_patients=10) == "passed"
    metrics["test_patients"] = 2  # two real scans: a bootstrap of 3 distinct resamples
    table = stage.claims_table(metrics, differences_frame(), proposed="adaptive_region", analysis=analysis)
    rows = table[table.claim != "C4"]
    assert (rows["verdict"] == "not measurable").all()
    assert (rows["p_holm"].dropna() == 1.0).all() and rows["p_holm"].notna().sum() == 5  # the family keeps its size
    assert (rows["gate"] == "failed: 2 test patients < 10").all()


def test_c4_needs_two_detectors():
    from crossmodal.stages.pelvis.claims import consistency_verdict

    supported = pd.Series(["supported", "supported"])
    assert consistency_verdict(supported, n_detectors=2) == "supported"
    assert consistency_verdict(supported, n_detectors=1) == "not measurable"


# ----------------------------------------------------------------------------- Part 2 (C5-C7)

from crossmodal.stages.skeleton import claims as skeleton  # noqa: E402


@pytest.fixture(scope="module")
def skeleton_cfg():
    return load_params(REPO / "params.yaml", "default")["classify"]


def _ap(ct_low=0.03, mri_low=0.04, pet_low=0.48):
    return pd.DataFrame({"modality": ["CT", "MRI", "PET"], "ap50": [ct_low + 0.02, mri_low + 0.02, 0.56],
                         "ap50_ci_low": [ct_low, mri_low, pet_low], "ap50_ci_high": [0.08, 0.1, 0.67]})


def _nested(p_pet=0.02, est_pet=0.06):
    """Hand-made nested_comparisons.csv: fused beats CT and MRI clearly, PET by ``est_pet``."""
    rows = []
    for single, est, p in (("CT", 0.3, 1e-4), ("MRI", 0.25, 1e-4), ("PET", est_pet, p_pet)):
        for comparison in ("like for like", "all patients"):
            for metric in ("auc", "accuracy", "pr_auc"):
                rows.append({"metric": metric, "estimate": est, "ci_low": est - 0.05, "ci_high": est + 0.05,
                             "n": 40, "p_value": p, "single": single, "comparison": comparison,
                             "delong_p": p if metric == "auc" else np.nan})
    return pd.DataFrame(rows)


def _vs_early(c3d_est=0.4, p=1e-5):
    return pd.DataFrame([{"comparator": m, "metric": metric, "difference": c3d_est, "ci_low": c3d_est - 0.1,
                          "ci_high": c3d_est + 0.1, "p_value": p, "n": 60}
                         for m in skeleton.EARLY_FUSION for metric in ("auc", "accuracy", "pr_auc")])


def _sanity(c3d_passed, fallback_passed):
    return pd.DataFrame({"model": list(skeleton.EARLY_FUSION), "passed": [c3d_passed, fallback_passed]})


def _skeleton_claims(cfg, *, ap=None, nested=None, sanity=(False, True)):
    gate = skeleton.detector_gate(_ap() if ap is None else ap, ["CT", "MRI", "PET"],
                                  float(cfg["gate"]["detector_ap50_ci_low"]))
    early = skeleton.early_fusion_comparator(_sanity(*sanity))
    rows = skeleton.comparison_rows(_nested() if nested is None else nested, _vs_early(), gate, early, cfg,
                                    secondary=False)
    return skeleton.claims_table(rows, alpha=cfg["claims"]["delong_alpha"],
                                 multiplicity=cfg["analysis"]["multiplicity"])


def test_detector_gate_reads_the_ap_ci_lower_bound(skeleton_cfg):
    gate = skeleton.detector_gate(_ap().iloc[[0, 2]], ["CT", "MRI", "PET"], 0.10).set_index("modality")
    assert not gate.loc["CT", "passed"] and gate.loc["PET", "passed"]
    assert not gate.loc["MRI", "passed"]  # no detector row: not a comparator either
    assert skeleton.detector_gate(_ap(ct_low=0.10), ["CT"], 0.10)["passed"].item()  # "reaches"


def test_a_broken_detector_makes_its_rows_comparator_not_measurable_with_p_one_in_the_family(skeleton_cfg):
    table = _skeleton_claims(skeleton_cfg).set_index(["claim", "comparator"])
    for claim in ("C5", "C7"):
        for m in ("CT", "MRI"):  # fused beats them by 0.3 with p = 1e-4, but their detectors are broken
            assert table.loc[(claim, m), "verdict"] == "comparator not measurable"
    # family: C5 x 3 + C6 + C7 x 3 = 7 rows; the four gated ones enter with p = 1
    assert table["p_holm"].notna().sum() == 7
    assert (table.loc[[("C5", "CT"), ("C5", "MRI"), ("C7", "CT"), ("C7", "MRI")], "p_holm"] == 1.0).all()
    # PET, p = 0.02: the smaller of the two real p-values (C6 p = 1e-5 is first), Holm factor 6
    assert table.loc[("C5", "PET"), "p_holm"] == pytest.approx(6 * 0.02)
    assert table.loc[("C5", "PET"), "verdict"] == "inconclusive"  # raw p < 0.05 does not decide
    assert table.loc[("C5", "PET"), "claim verdict"] == "inconclusive"
    assert table.loc[("C5", "PET"), "thesis"] == pytest.approx(0.085)
    assert bool(table.loc[("C5", "PET"), "thesis_in_ci"]) is True  # 0.085 in [0.01, 0.11]


def test_working_detectors_make_every_row_a_comparison(skeleton_cfg):
    table = _skeleton_claims(skeleton_cfg, ap=_ap(0.3, 0.3, 0.5)).set_index(["claim", "comparator"])
    assert (table["gate"] == "passed").all()
    assert table.loc[("C5", "CT"), "verdict"] == "supported"
    # Holm is step-down: with every p small, all are below alpha after adjustment
    assert table.loc[("C5", "PET"), "p_holm"] == pytest.approx(0.02 * 2)  # sixth smallest of 7 -> x2
    assert table.loc[("C5", "PET"), "verdict"] == "supported"
    assert table.loc[("C5", "CT"), "claim verdict"] == "supported"


def test_c6_uses_c3d_when_it_passes_else_the_fallback_else_is_not_measurable(skeleton_cfg):
    assert skeleton.early_fusion_comparator(_sanity(True, True)) == "c3d"
    assert skeleton.early_fusion_comparator(_sanity(False, True)) == "early_fusion_histogram"
    assert skeleton.early_fusion_comparator(_sanity(False, False)) is None
    c6 = _skeleton_claims(skeleton_cfg, sanity=(False, True)).set_index("claim").loc["C6"]
    assert c6["comparator"] == "early_fusion_histogram" and c6["verdict"] == "supported"
    c6 = _skeleton_claims(skeleton_cfg, sanity=(False, False)).set_index("claim").loc["C6"]
    assert c6["verdict"] == "comparator not measurable" and c6["p_holm"] == 1.0
    assert c6["claim verdict"] == "comparator not measurable"


def test_the_like_for_like_comparison_is_primary_and_the_all_patient_one_beside(skeleton_cfg):
    nested = _nested()
    nested.loc[nested["comparison"] == "all patients", "estimate"] = -0.5  # would flip the verdict
    table = _skeleton_claims(skeleton_cfg, ap=_ap(0.3, 0.3, 0.5), nested=nested)
    assert (table.loc[table["claim"] == "C5", "ours"] > 0).all()
    gate = skeleton.detector_gate(_ap(0.3, 0.3, 0.5), ["CT", "MRI", "PET"], 0.1)
    beside = skeleton.beside_table(skeleton.comparison_rows(nested, _vs_early(), gate, "c3d", skeleton_cfg,
                                                            secondary=True))
    allp = beside[beside["patients"].str.startswith("fused trained on all")]
    assert len(allp) == 6 and (allp["ours"] == -0.5).all()  # C5 and C7 x 3 modalities
    acc = beside[(beside["claim"] == "C5") & (beside["metric"] == "accuracy")]
    assert len(acc) == 3 and (acc["thesis"] == 0.079).all() and "verdict" not in beside


def test_the_skeleton_analysis_is_printed_with_its_family(skeleton_cfg):
    params = load_params(REPO / "params.yaml", "default")
    table = skeleton.analysis_table(skeleton_cfg, params["c3d"], ["CT", "MRI", "PET"]).set_index("claim")
    assert list(table.index) == ["C5", "C6", "C7"] and (table["family size"] == 7).all()
    assert table.loc["C5", "primary metric"] == "auc" and table.loc["C5", "thesis value"] == 0.085
    assert "like for like" in table.loc["C5", "comparison"]
    assert "0.1" in table.loc["C5", "gate"] and "PT" in table.loc["C6", "gate"]


@pytest.mark.parametrize("dotted, value, key", [
    (("classify", "gate", "detector_ap50_ci_low"), 1.5, "classify.gate.detector_ap50_ci_low"),
    (("classify", "analysis", "claims", "C5", "comparator"), "ct", "classify.analysis.claims.C5.comparator"),
    (("classify", "analysis", "claims", "C7", "metric"), "roc", "classify.analysis.claims.C7.metric"),
    (("classify", "nested", "inner_splits"), 1, "classify.nested: inner_splits must be >= 2"),
    (("classify", "nested", "n_repeats"), 9, "classify.nested: inner_splits must be >= 2 and n_repeats <="),
    (("c3d", "gate", "modality"), "XR", "c3d.gate.modality"),
    (("c3d", "gate", "sanity_auc_ci_low"), 2.0, "c3d.gate.sanity_auc_ci_low"),
])
def test_the_part2_analysis_and_gate_keys_are_validated(tmp_path, dotted, value, key):
    path = params_file_with(tmp_path, dotted, value)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert key in str(caught.value), str(caught.value)


def test_the_part2_headline_is_one_verdict_per_claim_and_the_page_states_it():
    from crossmodal.report.skeleton.claims import verdict_summary
    from crossmodal.stages.skeleton.claims import claims_json

    rows = pd.DataFrame({"claim": ["C5", "C5", "C6", "C7"], "comparator": ["CT", "PET", "c3d", "CT"],
                         "claim verdict": ["mixed", "mixed", "comparator not measurable", "supported"]})
    headline = claims_json(rows)
    assert headline == {"C5": "mixed", "C6": "comparator not measurable", "C7": "supported"}
    assert verdict_summary(headline) == ("**Claim verdicts:** C5: mixed; C6: comparator not measurable; "
                                         "C7: supported.")

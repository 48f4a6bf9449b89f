"""Part 2 on a real skeleton (stage ``real_anatomy_skeleton``): the classifier is pre-specified
from the phantom's nested choices, fitted on phantom patients only, and the hybrid patients'
scores give metrics and like-for-like fused-minus-single comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossmodal.learn.features import patient_feature_table
from crossmodal.report.skeleton.real_anatomy import detector_transfer_table
from crossmodal.report.skeleton.real_anatomy import findings_table
from crossmodal.stages.skeleton import real_anatomy

NAMES = ["CT", "MRI", "PET"]
BOOT = {"n_boot": 200, "seed": 0, "threshold": 0.5, "alpha": 0.05}


def features(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """Feature rows of ``n`` patients whose every modality's detections track the label."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    series, detections = [], []
    for i, label in enumerate(y):
        case = f"{prefix}{i:03d}"
        for k, modality in enumerate(NAMES):
            if (i + k) % 4 == 3:  # some patients lack a modality
                continue
            series.append({"case_id": case, "modality": modality, "n_slices": 20, "y": int(label)})
            for _ in range(int(rng.poisson(6 if label else 1))):
                detections.append({"case_id": case, "modality": modality, "score": rng.uniform(0.6, 0.99)})
    table = patient_feature_table(pd.DataFrame(detections, columns=["case_id", "modality", "score"]),
                                  pd.DataFrame(series), modalities=NAMES)
    table["y"] = pd.DataFrame(series).groupby("case_id")["y"].first().reindex(table.index)
    return table


def test_the_classifier_is_the_one_nested_cv_chose_most_often_for_the_fused_features(tmp_path):
    rows = [("fused", "all", "svm"), ("fused", "all", "logistic_regression"), ("fused", "all", "svm"),
            ("fused", "all", "logistic_regression"), ("fused", "CT", "random_forest"), ("CT", "CT", "random_forest"),
            ("fused", "all", "random_forest")]
    path = tmp_path / "nested_choices.csv"
    pd.DataFrame(rows, columns=["feature_set", "patients", "chosen"]).to_csv(path, index=False)
    chosen = real_anatomy.pre_specified_classifier(path)
    # svm and logistic_regression tie at 2 of the 5 fused-all folds: the first by name wins;
    # the CT-only choices never count
    assert chosen["classifier"] == "logistic_regression" and chosen["chosen_in"] == 2 and chosen["outer_folds"] == 5
    pd.DataFrame(rows[4:6], columns=["feature_set", "patients", "chosen"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="no nested choice for the fused features"):
        real_anatomy.pre_specified_classifier(path)


def test_hybrid_patients_are_scored_by_models_fitted_on_phantom_patients_only():
    phantom, hybrid = features(40, 0, "P"), features(12, 1, "H")
    scores = real_anatomy.score_feature_sets(phantom, hybrid, NAMES, "logistic_regression", seed=0)
    assert set(scores["case_id"]) <= set(hybrid.index)
    fused = scores[scores["feature_set"] == "fused"]
    assert sorted(fused["case_id"]) == sorted(hybrid.index)  # everyone gets a fused score
    for modality in NAMES:  # a single modality only for the patients who have it
        have = hybrid.index[hybrid[f"has_{modality}"] == 1]
        assert sorted(scores.loc[scores["feature_set"] == modality, "case_id"]) == sorted(have)
    # the labels are the hybrid patients' own; the phantom's features decide the model
    assert (fused.set_index("case_id")["y"] == hybrid["y"].reindex(fused["case_id"])).all()
    again = real_anatomy.score_feature_sets(phantom.iloc[::-1], hybrid, NAMES, "logistic_regression", seed=0)
    assert np.allclose(np.sort(again["prob"]), np.sort(scores["prob"]))
    shifted = phantom.assign(y=1 - phantom["y"])  # a phantom that says the opposite flips the scores
    flipped = real_anatomy.score_feature_sets(shifted, hybrid, NAMES, "logistic_regression", seed=0)
    assert np.corrcoef(flipped["prob"], scores["prob"])[0, 1] < 0


def test_fused_minus_single_is_compared_on_the_patients_who_have_that_modality():
    phantom, hybrid = features(40, 0, "P"), features(16, 2, "H")
    scores = real_anatomy.score_feature_sets(phantom, hybrid, NAMES, "logistic_regression", seed=0)
    tables = real_anatomy.classification_tables(scores, NAMES, BOOT, classifier="logistic_regression")
    metrics, comparisons = tables["metrics"], tables["comparisons"]
    assert set(metrics["feature_set"]) == {*NAMES, "fused"} and set(metrics["classifier"]) == {"logistic_regression"}
    auc = comparisons[comparisons["metric"] == "auc"].set_index("single")
    for modality in NAMES:
        have = (hybrid[f"has_{modality}"] == 1).sum()
        assert auc.loc[modality, "n"] == have  # paired on that modality's patients only
        assert auc.loc[modality, "ci_low"] <= auc.loc[modality, "estimate"] <= auc.loc[modality, "ci_high"]


def test_the_findings_table_counts_each_kind_with_its_evidence_or_the_modality_it_fools():
    findings = pd.DataFrame([
        {"case_id": "A", "kind": "metastasis", "type": "lytic", "site": "vertebra", "bone": "vertebrae_L2",
         "evidence": "all", "fools": None},
        {"case_id": "B", "kind": "metastasis", "type": "lytic", "site": "pelvis", "bone": "sacrum",
         "evidence": "all", "fools": None},
        {"case_id": "B", "kind": "mimic", "type": "haemangioma", "site": "vertebra", "bone": "vertebrae_L3",
         "evidence": None, "fools": "CT"}])
    table = findings_table(findings)
    assert table.loc[("metastasis", "lytic"), "n"] == 2 and table.loc[("metastasis", "lytic"), "patients"] == 2
    assert table.loc[("metastasis", "lytic"), "sites"] == "pelvis 1, vertebra 1"
    assert table.loc[("mimic", "haemangioma"), "evidence"] == "fools CT 1"


def test_the_detector_transfer_table_puts_the_phantom_beside_the_real_skeleton():
    columns = {"ap50": 0.6, "ap50_ci_low": 0.5, "ap50_ci_high": 0.7, "lesion_sensitivity": 0.8,
               "lesion_sensitivity_ci_low": 0.7, "lesion_sensitivity_ci_high": 0.9}
    phantom = pd.DataFrame([{"modality": "CT", "patients": 30, **columns}])
    real = pd.DataFrame([{"modality": "CT", "patients": 5, **{k: v / 2 for k, v in columns.items()}}])
    table = detector_transfer_table(phantom, real)
    assert table.loc["CT", "patients (real skeleton)"] == 5
    assert table.loc["CT", "AP50 (phantom)"] == "0.600 [0.500, 0.700]"
    assert table.loc["CT", "AP50 change"] == "-0.300"

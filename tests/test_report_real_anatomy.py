"""The Real anatomy pages' tables: provenance, the cohort sentence, phantom beside real anatomy,
and the real delineations at the detector input."""

from __future__ import annotations

import json

import pandas as pd

from crossmodal.report.real_anatomy import cohort_sentence
from crossmodal.report.real_anatomy import provenance_sentence
from crossmodal.report.real_anatomy import real_lesions_table
from crossmodal.report.real_anatomy import real_sizes_sentence
from crossmodal.report.real_anatomy import transfer_table


def metrics(ap: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"detector": ["yolov8", "yolov8"], "input": ["adaptive_region", "pet_only"], "AP50": ap,
                         "AP50_ci_low": [a - 0.05 for a in ap], "AP50_ci_high": [a + 0.05 for a in ap]})


def test_transfer_table_puts_each_run_on_both_cohorts_side_by_side():
    table = transfer_table(metrics([0.8, 0.7]), metrics([0.4, 0.5]).iloc[::-1], "AP50")
    assert list(table.columns) == ["phantom test", "real anatomy", "change"]
    assert table.loc[("yolov8", "adaptive_region")].tolist() == ["0.800 [0.750, 0.850]", "0.400 [0.350, 0.450]",
                                                                 "-0.400"]
    assert table.loc[("yolov8", "pet_only"), "change"] == "-0.200"


def test_provenance_and_cohort_sentences_come_from_the_files(tmp_path):
    (tmp_path / "SOURCE.json").write_text(json.dumps({
        "package": "totalsegmentator", "version": "2.18.0", "sha256": "ab" * 32, "licence": "Apache-2.0",
        "citation": "Wasserthal J, et al. 2023.", "files": {"ct.nii.gz": {"from": "tests/example_ct.nii.gz"}}}))
    sentence = provenance_sentence(tmp_path)
    assert "`totalsegmentator==2.18.0`" in sentence and "`tests/example_ct.nii.gz`" in sentence
    assert "Apache-2.0" in sentence and "Wasserthal J, et al. 2023." in sentence
    lesions = pd.DataFrame({"case_id": ["a", "a", "b"], "kind": ["tumour", "node", "tumour"]})
    alignment = pd.DataFrame({"error_before_mm": [6.0, 4.0], "error_after_mm": [1.0, 0.6]})
    sentence = cohort_sentence(lesions, 2, alignment)
    assert sentence.startswith("**2 hybrid patients**") and "2 tumours, 1 node inserted" in sentence
    assert "from 5.0 mm to 0.8 mm" in sentence


def real_lesions(extent_px: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"case": ["lung1", "lung2"][:len(extent_px)], "case_id": ["Ca", "Cb"][:len(extent_px)],
                         "ct": "real", "lesion": "real delineation", "pet": "simulated",
                         "volume_ml": [1.4, 48.0][:len(extent_px)], "extent_mm": [13.7, 45.1][:len(extent_px)],
                         "extent_px": extent_px, "target_px": 12.0, "suv_max_simulated": 6.1, "suv_max": 5.0,
                         "hu_mean": -60.0, "error_before_mm": 6.7, "error_after_mm": 0.3})


def test_real_sizes_sentence_counts_lesions_that_reach_the_target_and_names_the_smallest():
    sentence = real_sizes_sentence(real_lesions([9.1, 28.0]), 192)
    assert "**1 of 2 real lesions**" in sentence and "192 px" in sentence and "12 px" in sentence
    assert "smallest (lung1, 13.7 mm across) spans 9.1 px" in sentence
    assert "**2 of 2 real lesions**" in real_sizes_sentence(real_lesions([12.0, 28.0]), 256)
    assert real_sizes_sentence(real_lesions([]), 192) == "No real lesion was measured."


def test_real_lesions_table_says_what_is_real_and_keeps_one_row_per_lesion():
    table = real_lesions_table(real_lesions([9.1, 28.0]))
    assert list(table["real scan"]) == ["lung1", "lung2"]
    assert {"CT", "lesion", "PET", "extent at detector input (px)", "SUVmax simulated"} <= set(table.columns)
    assert "case_id" not in table.columns and "hu_mean" not in table.columns

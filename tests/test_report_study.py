"""What a Part 1 page says about its study's data is written from params.yaml: the pelvic
study's pages say simulated phantom, the lung study's say real CT with simulated PET and
real test delineations, a cohort of one's own DICOM says neither."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from conftest import REPO

from crossmodal.params import load_params
from crossmodal.report.data_card import fusion_gain_sentence
from crossmodal.report.study import data_notice
from crossmodal.report.study import simulation_description
from crossmodal.report.study import locked_test_description


@pytest.fixture(scope="module")
def studies() -> dict[str, dict]:
    return {name: load_params(REPO / "params.yaml", "default", study=name) for name in ("pelvis", "lung")}


def test_the_pelvic_pages_say_simulated_phantom_with_its_own_test_seed(studies):
    notice = data_notice(studies["pelvis"])
    assert notice.startswith("```{admonition} Simulated data\n:class: warning\n") and notice.endswith("\n```")
    assert "Study **pelvis** (cervical cancer, pelvis)" in notice
    assert "embedded pelvic PET/CT phantom" in notice and "`phantom.pelvis_test`" in notice
    assert "cervical tumour" in simulation_description(studies["pelvis"])


def test_the_lung_pages_say_real_ct_simulated_pet_and_real_test_delineations(studies):
    params = studies["lung"]
    notice = data_notice(params)
    assert notice.startswith("```{admonition} Real CT, simulated PET")
    assert "Study **lung** (lung cancer, chest)" in notice
    assert "a **real chest CT** (`totalsegmentator==2.18.0`; sex not stated by the source)" in notice
    assert f"its {params['phantom']['lung']['n_patients']} patients share one real anatomy" in notice
    assert "Locked test cohort: **2 real CT scans with their real tumour delineations** (`pyradiomics==3.0.1`)" in notice
    card = simulation_description(params)
    assert "inserted inside lung (at least 90% of it), with the CT number of muscle" in card
    assert "- **nodes**: none inserted" in card and "cervical" not in card and "bladder" not in card
    assert "|" not in card  # prose, not a table the book would expect a caption on


def test_own_dicom_is_neither_simulated_nor_described_as_a_phantom(studies):
    params = copy.deepcopy(studies["pelvis"])
    params["cohort"]["pelvis"] |= {"source": "dicom", "root": "data/hospital", "test_root": None}
    notice = data_notice(params)
    assert notice.startswith("```{admonition} Your data") and "the DICOM tree `data/hospital`" in notice
    assert "clinical performance" not in notice and "phantom" not in notice
    assert locked_test_description(params) == "none: the test patients are a split of the development cohort"
    assert simulation_description(params) == ""
    params["cohort"]["pelvis"]["test_root"] = "data/hospital-2024"
    assert locked_test_description(params) == "the DICOM tree `data/hospital-2024`"


def test_an_oracle_without_mimics_says_how_many_there_are():
    oracle = pd.DataFrame({"target": "lesion", "features": ["PET", "CT", "PET+CT", "PET+CT minus PET"],
                           "lesions": 4, "mimics": 0, "AUC": float("nan"), "AUC_ci_low": float("nan"),
                           "AUC_ci_high": float("nan")})
    sentence = fusion_gain_sentence(oracle)
    assert "this cohort has 0 mimics" in sentence and "not stated before training" in sentence

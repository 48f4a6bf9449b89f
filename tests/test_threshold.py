"""The non-learned reference: an SUV threshold with a CT water-density veto."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import REPO
from crossmodal.detect.threshold import suv_threshold_detections
from crossmodal.params import ParamsError
from crossmodal.params import load_params
from crossmodal.params import validate_params
from crossmodal.stages.pelvis import planned_runs

RULE = {"ct_window": (-160.0, 240.0), "suv_max": 10.0, "suv_threshold": 2.5, "water_hu": (-20.0, 25.0),
        "min_pixels": 4}


def _image(hu: float = 40.0) -> np.ndarray:
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = round((hu + 160) / 400 * 255)
    return image


def _put(image, y0, y1, x0, x1, *, suv: float, hu: float) -> None:
    image[y0:y1, x0:x1, 1] = round(suv / 10.0 * 255)
    image[y0:y1, x0:x1, 0] = round((hu + 160) / 400 * 255)


def test_hot_regions_are_found_and_scored_by_suvmax_unless_ct_says_water():
    image = _image()
    _put(image, 2, 8, 3, 9, suv=8.0, hu=55.0)  # tumour: soft tissue
    _put(image, 20, 30, 20, 30, suv=10.0, hu=5.0)  # bladder: urine, vetoed
    _put(image, 12, 15, 2, 5, suv=4.0, hu=45.0)  # node
    _put(image, 25, 26, 2, 3, suv=9.0, hu=45.0)  # one pixel: noise
    found = suv_threshold_detections(image, **RULE)
    np.testing.assert_allclose(found[:, :4], [[3, 2, 9, 8], [2, 12, 5, 15]])
    np.testing.assert_allclose(found[:, 4], [8.0 / 10.0, 4.0 / 10.0], atol=0.01)
    assert (found[:, 5] == 0).all()
    assert len(suv_threshold_detections(image, **{**RULE, "suv_threshold": 9.5})) == 0  # bladder still vetoed
    assert len(suv_threshold_detections(image, **{**RULE, "water_hu": (100.0, 200.0)})) == 3  # veto off
    with pytest.raises(ValueError, match="CT and PET"):
        suv_threshold_detections(image[..., :1], **RULE)


def test_the_reference_is_one_more_run_and_must_read_ct_and_pet():
    params = load_params(REPO / "params.yaml")
    runs = planned_runs(params["detect"])
    assert runs[-1] == {"detector": "suv_threshold", "input": params["detect"]["reference"]["input"], "seed": 0}
    wrong = copy.deepcopy(params)
    wrong["detect"]["reference"]["input"] = "pet_only"
    with pytest.raises(ParamsError, match="detect.reference.input"):
        validate_params(wrong)

"""PET body-weight SUV by the QIBA vendor-neutral rule (method spec, Part 1 step 1).

``SUV = (stored x RescaleSlope + RescaleIntercept) x weight[kg] x 1000 / (dose x 2^(-dt/T1/2))``

* Units ``BQML``: decay from the injection to the series reference time; DecayCorrection
  must be ``START`` and CorrectedImage must contain ``ATTN`` and ``DECY``.
* Injection time: RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime.
* Reference time: SeriesDateTime, or the earliest AcquisitionDateTime of the series when
  the series was post-processed (SeriesTime later than the acquisition).
* Units ``GML``: the pixels already are SUVbw (factor 1).
* Units ``CNTS``: Philips private SUV scale factor (7053,1000).
Anything missing raises :class:`~crossmodal.io.errors.MissingSUVTagError`; other units
raise :class:`~crossmodal.io.errors.UnsupportedUnitsError`. Never a silent raw-count image.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydicom.dataset import Dataset

from crossmodal.io.errors import MissingSUVTagError
from crossmodal.io.errors import UnsupportedUnitsError


#: Every top-level tag :func:`suv_factor` reads (a test checks it): two slices holding the
#: same stored values of these have the same factor, so a series computes it once per
#: distinct set (the radiopharmaceutical sequence is compared item by item, element by element).
SUV_TAGS = (
    0x00541001,  # Units
    0x70531000,  # Philips SUV scale factor
    0x00280051,  # CorrectedImage
    0x00541102,  # DecayCorrection
    0x00101030,  # PatientWeight
    0x00540016,  # RadiopharmaceuticalInformationSequence
    0x00080021,  # SeriesDate
    0x00080031,  # SeriesTime
)


def _parse_datetime(date: str, time: str) -> dt.datetime:
    time = (time or "").split(".")[0].ljust(6, "0")
    return dt.datetime.strptime(f"{date}{time[:6]}", "%Y%m%d%H%M%S")


def _require(ds: Dataset, keyword: str, path: str, where: Dataset | None = None):
    source = where if where is not None else ds
    value = getattr(source, keyword, None)
    if value is None or value == "":
        raise MissingSUVTagError(path, f"{keyword} is absent")
    return value


def injection_datetime(ds: Dataset, path: str = "<dataset>") -> dt.datetime:
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    if not seq:
        raise MissingSUVTagError(path, "RadiopharmaceuticalInformationSequence is absent")
    drug = seq[0]
    start_dt = getattr(drug, "RadiopharmaceuticalStartDateTime", None)
    if start_dt:
        s = str(start_dt).split(".")[0].split("+")[0]
        return _parse_datetime(s[:8], s[8:])
    start_time = _require(ds, "RadiopharmaceuticalStartTime", path, drug)
    return _parse_datetime(_require(ds, "SeriesDate", path), start_time)


def reference_datetime(ds: Dataset, path: str = "<dataset>",
                       earliest_acquisition: dt.datetime | None = None) -> dt.datetime:
    series = _parse_datetime(_require(ds, "SeriesDate", path), _require(ds, "SeriesTime", path))
    if earliest_acquisition is not None and series > earliest_acquisition:
        return earliest_acquisition  # post-processed series: SeriesTime is not the scan time
    return series


def acquisition_datetime(ds: Dataset) -> dt.datetime | None:
    date = getattr(ds, "AcquisitionDate", None) or getattr(ds, "SeriesDate", None)
    time = getattr(ds, "AcquisitionTime", None)
    if not date or not time:
        return None
    return _parse_datetime(date, time)


def suv_factor(ds: Dataset, path: str = "<dataset>", *,
               earliest_acquisition: dt.datetime | None = None) -> float:
    """Factor that turns rescaled pixel values (slope/intercept applied) into SUVbw."""
    units = str(_require(ds, "Units", path)).upper()
    if units == "GML":
        return 1.0
    if units == "CNTS":
        philips = ds.get((0x7053, 0x1000))
        if philips is None:
            raise MissingSUVTagError(path, "Units CNTS need the Philips SUV scale factor (7053,1000)")
        return float(philips.value if not isinstance(philips.value, bytes) else philips.value.decode())
    if units != "BQML":
        raise UnsupportedUnitsError(path, f"Units {units!r} (supported: BQML, GML, CNTS)")
    raw = getattr(ds, "CorrectedImage", None) or []
    raw = [raw] if isinstance(raw, str) else raw  # a single value is a plain string in pydicom
    corrected: Sequence[str] = [str(c).upper() for c in raw]
    for needed in ("ATTN", "DECY"):
        if needed not in corrected:
            raise UnsupportedUnitsError(path, f"CorrectedImage lacks {needed} (has {list(corrected)})")
    decay_correction = str(_require(ds, "DecayCorrection", path)).upper()
    if decay_correction != "START":
        raise UnsupportedUnitsError(path, f"DecayCorrection {decay_correction!r} (need START)")
    weight = float(_require(ds, "PatientWeight", path))
    if weight <= 0:
        raise MissingSUVTagError(path, f"PatientWeight is {weight}")
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    if not seq:
        raise MissingSUVTagError(path, "RadiopharmaceuticalInformationSequence is absent")
    dose = float(_require(ds, "RadionuclideTotalDose", path, seq[0]))
    half_life = float(_require(ds, "RadionuclideHalfLife", path, seq[0]))
    elapsed = (reference_datetime(ds, path, earliest_acquisition) - injection_datetime(ds, path)).total_seconds()
    decayed_dose = dose * 2.0 ** (-elapsed / half_life)
    return weight * 1000.0 / decayed_dose

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
raise :class:`~crossmodal.io.errors.UnsupportedUnitsError`; a value no scan can have (not a
number, a malformed date or time, outside the bounds below) raises
:class:`~crossmodal.io.errors.ImplausibleValueError`. Never a silent raw-count image.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pydicom.dataset import Dataset

from crossmodal.io.errors import ImplausibleValueError
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


# Plausibility bounds of the SUV inputs: our own, kept generous. A value outside them comes
# from no real scan (a unit slip, a typo, a placeholder); a legitimate one is never refused.

#: Patient weight, kg: an extremely preterm neonate (~0.5 kg) to above the rated load of every
#: PET/CT patient table (bariatric ones ~320 kg); a weight in grams falls outside.
PATIENT_WEIGHT_KG = (0.3, 400.0)
#: Injected activity, Bq: 1 MBq (under the EANM paediatric FDG minimum, 14 MBq) to 20 GBq (ten
#: times the largest diagnostic activity, ~2 GBq of Rb-82 or O-15 water; adult FDG is 150-500 MBq
#: by the EANM guideline 2.0); a dose written in MBq, kBq or mCi falls below.
INJECTED_DOSE_BQ = (1e6, 2e10)
#: Half-life, s: 1 min to 1 week holds every PET nuclide in clinical use, Rb-82 (76 s) to
#: I-124 (4.2 d); F-18 is 6586 s.
HALF_LIFE_S = (60.0, 7 * 86400.0)
#: The reference time at most this many half-lives after injection (decay factor >= 1/32):
#: 9.1 h for F-18, past the latest delayed FDG imaging (~4 h); 16 d for Zr-89, past its
#: day-7 immunoPET scans. A wrong injection date, or a half-life in minutes, breaks it.
MAX_ELAPSED_HALF_LIVES = 5.0
#: How far (s) the reference time may precede the injection: injector and scanner clocks drift
#: apart by minutes and a dynamic scan starts at injection. Earlier is acquisition before injection.
CLOCK_SKEW_S = 300.0


def _parse_datetime(date: str, time: str, path: str = "<dataset>", tags: str = "date and time") -> dt.datetime:
    """A DICOM date (YYYYMMDD) and time (HHMMSS.ffffff, or the retired HH:MM:SS) to the second;
    anything else raises :class:`ImplausibleValueError` naming ``tags`` (never the value: dates are PHI)."""
    date, time = str(date or ""), str(time or "").replace(":", "").split(".")[0].ljust(6, "0")[:6]
    try:
        if not (len(date) == 8 and date.isdigit() and time.isdigit()):
            raise ValueError("not YYYYMMDD and HHMMSS")
        return dt.datetime.strptime(f"{date}{time}", "%Y%m%d%H%M%S")
    except ValueError:
        raise ImplausibleValueError(path, f"{tags} is not a valid DICOM date and time") from None


def _require(ds: Dataset, keyword: str, path: str, where: Dataset | None = None):
    source = where if where is not None else ds
    value = getattr(source, keyword, None)
    if value is None or value == "":
        raise MissingSUVTagError(path, f"{keyword} is absent")
    return value


def _require_number(ds: Dataset, keyword: str, path: str, bounds: tuple[float, float], unit: str,
                    where: Dataset | None = None) -> float:
    """The tag's value as a number within ``bounds`` (NaN is outside); else :class:`ImplausibleValueError`."""
    try:
        value = float(_require(ds, keyword, path, where))
    except (TypeError, ValueError) as err:  # pydicom converts a decimal string on access
        raise ImplausibleValueError(path, f"{keyword} is not a number ({err})") from None
    low, high = bounds
    if not low <= value <= high:
        raise ImplausibleValueError(path, f"{keyword} {value:g} {unit} is outside the plausible "
                                          f"{low:g}..{high:g} {unit}")
    return value


def _check_elapsed(elapsed: float, half_life: float, path: str) -> None:
    """Refuse a reference time before the injection (beyond clock skew) or so late that the
    decay factor is implausible. The message gives durations only: dates are PHI."""
    if elapsed < -CLOCK_SKEW_S:
        raise ImplausibleValueError(path, f"acquisition before injection: the reference time is {-elapsed:.0f} s "
                                          f"before the injection (clock skew up to {CLOCK_SKEW_S:g} s tolerated)")
    if elapsed > MAX_ELAPSED_HALF_LIVES * half_life:
        raise ImplausibleValueError(path, f"decay factor 2^-{elapsed / half_life:.1f} out of range: the reference "
                                          f"time is {elapsed:.0f} s after the injection, more than "
                                          f"{MAX_ELAPSED_HALF_LIVES:g} half-lives of {half_life:g} s")


def injection_datetime(ds: Dataset, path: str = "<dataset>") -> dt.datetime:
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    if not seq:
        raise MissingSUVTagError(path, "RadiopharmaceuticalInformationSequence is absent")
    drug = seq[0]
    start_dt = getattr(drug, "RadiopharmaceuticalStartDateTime", None)
    if start_dt:
        s = re.split(r"[+-]", str(start_dt).split(".")[0])[0]  # a UTC offset may be - or +
        return _parse_datetime(s[:8], s[8:], path, "RadiopharmaceuticalStartDateTime")
    start_time = _require(ds, "RadiopharmaceuticalStartTime", path, drug)
    injection = _parse_datetime(_require(ds, "SeriesDate", path), start_time, path,
                                "SeriesDate + RadiopharmaceuticalStartTime")
    series = reference_datetime(ds, path)
    if (injection - series).total_seconds() > CLOCK_SKEW_S:
        injection -= dt.timedelta(days=1)  # a start time without a date: injected before midnight
    return injection


def reference_datetime(ds: Dataset, path: str = "<dataset>",
                       earliest_acquisition: dt.datetime | None = None) -> dt.datetime:
    series = _parse_datetime(_require(ds, "SeriesDate", path), _require(ds, "SeriesTime", path), path,
                             "SeriesDate + SeriesTime")
    if earliest_acquisition is not None and series > earliest_acquisition:
        return earliest_acquisition  # post-processed series: SeriesTime is not the scan time
    return series


def acquisition_datetime(ds: Dataset, path: str = "<dataset>") -> dt.datetime | None:
    date = getattr(ds, "AcquisitionDate", None) or getattr(ds, "SeriesDate", None)
    time = getattr(ds, "AcquisitionTime", None)
    if not date or not time:
        return None
    return _parse_datetime(date, time, path, "AcquisitionDate (or SeriesDate) + AcquisitionTime")


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
        value = philips.value if not isinstance(philips.value, bytes) else philips.value.decode()
        try:
            factor = float(value)
        except (TypeError, ValueError):
            raise ImplausibleValueError(path, "Philips SUV scale factor (7053,1000) is not a number") from None
        if not 0 < factor < float("inf"):
            raise ImplausibleValueError(path, f"Philips SUV scale factor (7053,1000) {factor:g} is not a "
                                              "finite positive number")
        return factor
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
    weight = _require_number(ds, "PatientWeight", path, PATIENT_WEIGHT_KG, "kg")
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    if not seq:
        raise MissingSUVTagError(path, "RadiopharmaceuticalInformationSequence is absent")
    dose = _require_number(ds, "RadionuclideTotalDose", path, INJECTED_DOSE_BQ, "Bq", seq[0])
    half_life = _require_number(ds, "RadionuclideHalfLife", path, HALF_LIFE_S, "s", seq[0])
    elapsed = (reference_datetime(ds, path, earliest_acquisition) - injection_datetime(ds, path)).total_seconds()
    _check_elapsed(elapsed, half_life, path)
    decayed_dose = dose * 2.0 ** (-elapsed / half_life)
    return weight * 1000.0 / decayed_dose

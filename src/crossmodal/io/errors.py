"""Errors raised by ingestion. Each names the offending file (or series) and the rule broken.

The cohort reader catches :class:`IngestError`, records it in the cohort report and goes
on with the rest of the cohort; it never silently uses a broken series.
"""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """Base class: ``path`` is the file or folder at fault, ``rule`` the rule it broke."""

    rule = "ingestion rule"

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {self.rule}: {detail}")

    def __reduce__(self):  # rebuilt from (path, detail) when it crosses to another process
        return type(self), (self.path, self.detail)


class NotDicomError(IngestError):
    rule = "not a readable DICOM file"


class SeriesGeometryError(IngestError):
    rule = "series geometry"


class MissingSliceError(SeriesGeometryError):
    rule = "missing slices or uneven slice spacing"


class MixedOrientationError(SeriesGeometryError):
    rule = "mixed slice orientations in one series"


class MissingSUVTagError(IngestError):
    rule = "missing tag needed for SUV"


class UnsupportedUnitsError(IngestError):
    rule = "unsupported PET units or corrections"


class ImplausibleValueError(IngestError):
    """A header or pixel value no scan can have (bounds in :mod:`crossmodal.io.suv` and
    :mod:`crossmodal.io.dicom`): the detail names the tag, its value and the bound broken."""

    rule = "physically implausible header or pixel value"


class LabelGridMismatchError(IngestError):
    rule = "label grid differs from its image grid"


class MissingLabelError(IngestError):
    rule = "no label volume for a labelled series"


class EmptyLabelError(IngestError):
    rule = "label volume is empty"


class AmbiguousLabelError(IngestError):
    rule = "more than one label for a series"


class LabelReferenceError(IngestError):
    rule = "label references another series"


class NoLabelContentError(IngestError):
    rule = "SEG without frames or RTSTRUCT without contours"


class UnknownSegmentError(IngestError):
    rule = "segment or ROI name not in label_names"


class LabelOffGridError(LabelGridMismatchError):
    rule = "label frames or contours off the image's slices"


class OverlappingLabelsError(IngestError):
    rule = "segments or ROIs of different label values overlap"


class UnpairedSeriesError(IngestError):
    rule = "study lacks a required modality"

"""Ingestion: DICOM (CT, PET->SUV, MR), autoPET NIfTI, nnU-Net raw export.

The only layer that sees patient identifiers; everything it returns or writes is
pseudonymous.
"""

from crossmodal.io.case import Case
from crossmodal.io.case import load_cases
from crossmodal.io.cohort import CohortReport
from crossmodal.io.cohort import ingest_dicom_cohort
from crossmodal.io.errors import IngestError

__all__ = ["Case", "CohortReport", "IngestError", "ingest_dicom_cohort", "load_cases"]

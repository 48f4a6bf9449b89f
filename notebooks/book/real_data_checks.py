# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Real-data checks: official tumour boxes on real CT
#
# Our ingestion reads every cohort, simulated or a hospital's. This page checks it on real
# public data nobody on this team wrote: the Lung-PET-CT-Dx collection's chest CT series
# with the collection's official tumour boxes (The Cancer Imaging Archive; PASCAL-VOC
# files named by the SOPInstanceUID of their slice). Each box is put on the slice our DICOM
# reader places that SOPInstanceUID at, and must land on tissue clearly denser than the
# aerated lung around it: a slice order, a row or a column flipped by the reader would put
# the boxes on air (the test suite shows the check failing on a volume turned upside down).
#
# The data lives outside the repository (`../shared/data`, for developers and CI; it is
# never copied here), so this page runs when the book is built, not in a DVC stage, and
# says so where the folder is absent. Patients and series are named by their position, not
# by any identifier of the collection.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
collection = "../shared/data/lung-pet-ct-dx"

# %% tags=["remove-input"]
from pathlib import Path

from IPython.display import Markdown
from IPython.display import display

from crossmodal.io.voc import LUNG_PET_CT_DX
from crossmodal.io.voc import collection_box_checks
from crossmodal.report.real_anatomy import box_checks_sentence
from crossmodal.report.real_anatomy import box_checks_table
from crossmodal.report.table import book_table

display(Markdown(f"Cite: {LUNG_PET_CT_DX}."))
if Path(collection).is_dir():
    checks = collection_box_checks(collection)
    display(Markdown(box_checks_sentence(checks)))
    display(book_table(box_checks_table(checks), name="tbl-box-checks",
                       caption="The collection's tumour boxes on the CT our reader builds, per series: how many, "
                               "on which slices, their size, the CT numbers inside and in the lung around, and how "
                               "many land on tissue.",
                       stage=None, built_by=box_checks_table, keys=2))
else:
    display(Markdown(f"```{{note}}\nSkipped: `{collection}` is not on the machine that built this book. The "
                     "check runs wherever that folder is present; the test suite runs it too.\n```"))

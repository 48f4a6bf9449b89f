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
# # Bone metastasis: cohort and ingestion
#
# ```{admonition} Simulated data
# :class: warning
# Every image of Part 2 comes from the **embedded skeletal CT/MRI/PET phantom**: a seeded
# simulation of breast-cancer patients screened for bone metastasis, written as DICOM series
# and read back through the normal ingestion. Metastases (lytic, sclerotic, mixed) and benign
# mimics that fool one modality but not the others are simulated; no real patient is shown,
# and the numbers of this part measure the method on the phantom, not a clinical performance.
# ```
#
# The thesis's Part 2 pipeline: one YOLO detector per modality finds metastasis candidates on
# every slice (next three pages); the confidences of a series' detections are counted in eight
# bins; the three modalities' vectors are concatenated (missing modality: zeros and a presence
# flag) into one patient vector, which many classifiers turn into a diagnosis. It is compared
# with single-modality vectors and with C3D, a 3-D CNN that sees the modalities stacked as
# channels (early fusion); the last page states claims C5-C7 against what we reproduce.
#
# This step reads the skeletal DICOM tree (each modality its own study, grouped by patient)
# into pseudonymised case folders. Our method choices beside the thesis's are tabled on the
# claims page, with the numbers read from `params.yaml`.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
cohort = "skeleton"
out = "results/skeleton/ingest"

# %%
from crossmodal.params import load_params
from crossmodal.stages import ingest

params = load_params(params_path, profile)
report = ingest.run(params, cohort=cohort, out=out)

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.cohort import ingest_sentence
from crossmodal.report.cohort import problems_table
from crossmodal.report.skeleton.cohort import cohort_overview
from crossmodal.report.skeleton.cohort import modalities_sentence
from crossmodal.report.table import book_table

summary = report.to_dict()
cohort_table = cohort_overview(out, params["cohort"][cohort])
display(Markdown(ingest_sentence(summary, params["profile"]) + " " + modalities_sentence(cohort_table)))

# %% [markdown]
# ## Cohort
#
# Patients and slices per modality (a patient has one to three modalities; availability is
# drawn independently of the label).

# %% tags=["hide-input"]
display(book_table(cohort_table, name="tbl-skeleton-cohort",
                   caption="Ingested patients (with and without bone metastasis), slices, lesion slices, grid and "
                           "voxel spacing per modality; the last row counts the patients with any series.",
                   stage="ingest_skeleton", built_by=cohort_overview, params=["cohort.skeleton"],
                   data=f"{out}/cases.csv", max_columns=5))
problems = problems_table(summary)
display(book_table(problems, name="tbl-skeleton-ingest-problems",
                   caption="Files, series and cases of the skeletal cohort skipped by ingestion, with the rule each broke.",
                   stage="ingest_skeleton", built_by=problems_table, params=["ingest"], data=f"{out}/report.json")
        if len(problems) else Markdown("No file, series or case was skipped."))

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
# # Bone metastasis: detector datasets and the leakage rule
#
# ```{admonition} Simulated data
# :class: warning
# The slices below come from the simulated skeletal CT/MRI/PET phantom.
# ```
#
# One detector per modality and patient fold. The leakage rule is ours (the thesis does not
# state one): no patient's features may come from a detector that trained on that patient.
# With `part2_detect.leakage: cross_fit` the patients are split into label-stratified folds and
# fold k is scored by the detector trained on the other folds; `holdout` trains on a disjoint
# subset and scores (and classifies) only the rest. With cross-fitting a patient's own
# features never come from a detector that saw it, but the features of the classifier's
# *training* patients may come from a detector that saw the test patient (the usual
# cross-fitting compromise); `holdout` removes that too, at the cost of fewer classified
# patients.
#
# Each series is turned into detector slices: intensity windows as channels, cropped to the
# body, letterboxed; a detector's training patients give their lesion slices plus sampled
# lesion-free ones, its scored patients every slice.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
ingest_dir = "results/skeleton/ingest"
out = "results/skeleton/datasets"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import datasets

params = load_params(params_path, profile)
tables = datasets.run(params, ingest_dir=ingest_dir, out=out)

# %% tags=["hide-input"]
from IPython.display import display

from crossmodal.report.skeleton.detectors import leakage_table

# %% [markdown]
# ## Who trains, who is scored
#
# Patients per detector and role; the last column is the leakage rule in numbers (it must be
# 0). Which detector scored which patient is in `assignment.csv`.

# %% tags=["hide-input"]
display(leakage_table(tables["assignment"]))

# %% [markdown]
# ## Detector datasets
#
# Slices and lesion boxes each detector trains on, and the slices it scores.

# %% tags=["hide-input"]
display(tables["detectors"].set_index(["modality", "detector"]))

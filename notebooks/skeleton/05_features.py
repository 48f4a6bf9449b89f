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
# # Bone metastasis: confidence-bin features
#
# ```{admonition} Simulated data
# :class: warning
# Features of the simulated skeletal CT/MRI/PET phantom.
# ```
#
# One row per scored patient: for each modality the number of detections per slice in each
# of `features.n_bins` confidence bins from `features.conf` (the thesis: 8 bins from 0.2), then
# one presence flag per modality (ours: it tells "not imaged" from "imaged, nothing found").
# The repeated stratified folds shared by the classifiers and C3D are drawn here once.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
datasets_dir = "results/skeleton/datasets"
runs_dir = "results/skeleton/runs"
out = "results/skeleton/features"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import features

params = load_params(params_path, profile)
tables = features.run(params, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out)

# %% [markdown]
# Patients sorted by class (negatives above the white line), then the class means.

# %% tags=["hide-input"]
from IPython.display import display

from crossmodal.report.skeleton.classifiers import as_image
from crossmodal.report.skeleton.classifiers import feature_heatmap

table = tables["features"]
classes = ("no metastasis", "metastasis")

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-features-patients", "caption": "The fused feature vector of every patient (rows), negatives above the white line. Stage `features_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.feature_heatmap`; params `features`; data {download}`features.csv <../../../results/skeleton/features/features.csv>`."}}
display(as_image(feature_heatmap(table, table["y"], kind="patients", class_names=classes)))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-features-mean", "caption": "The class means of the fused feature vector. Stage `features_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.feature_heatmap`; params `features`; data {download}`features.csv <../../../results/skeleton/features/features.csv>`."}}
display(as_image(feature_heatmap(table, table["y"], kind="mean", class_names=classes)))

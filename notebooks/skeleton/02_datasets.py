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
# body and letterboxed to `part2_detect.slice_size`. The crop keeps the largest connected
# bright region (`body_component: largest`): the CT couch, which spans the field of view, is
# left out, so the body fills the slice. The slice size is chosen (our choice) so that the
# smallest metastasis the phantom draws (`phantom.skeleton.metastasis_radius_mm`) spans at
# least `part2_detect.min_lesion_px` pixels: a YOLO detector's
# finest feature map has a stride of 8 pixels, and lesion boxes are not widened. A
# detector's scored patients give every slice whole; its training patients give
# `part2_detect.tile_size`-pixel tiles cut from their slices at the same magnification: one
# per lesion cross-section, placed at random around it, and one per sampled lesion-free
# slice (`negatives_per_positive` per lesion slice). Training on tiles costs a fraction of
# training on whole slices; the fully convolutional detector then reads whole slices.

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
from crossmodal.report.skeleton.detectors import lesion_size_table
from crossmodal.report.table import book_table

# %% [markdown]
# ## Who trains, who is scored
#
# Patients per detector and role; the last column is the leakage rule in numbers (it must be
# 0). Which detector scored which patient is in `assignment.csv`.

# %% tags=["hide-input"]
display(book_table(leakage_table(tables["assignment"]), name="tbl-skeleton-leakage",
                   caption="Patients per detector (modality and fold) and role, and the patients scored by a detector "
                           "that trained or validated on them (the leakage rule says none).",
                   stage="datasets_skeleton", built_by=leakage_table,
                   params=["part2_detect.leakage", "part2_detect.n_folds", "part2_detect.holdout_fraction",
                           "part2_detect.seed"],
                   data=f"{out}/assignment.csv", keys=2))

# %% [markdown]
# ## Detector datasets
#
# Tiles and lesion boxes each detector trains on (`train_slices` counts tiles), and the
# slices it scores. A training patient counts here when it gave at least one tile; a patient
# without metastasis gives tiles only if one of its slices is drawn among the lesion-free
# slices (`part2_detect.negatives_per_positive` per lesion slice, drawn from all of the
# detector's training patients together), so this count can be below the patients assigned
# to train above; the difference is always lesion-free patients. Fold d0 also trains on nested, label-stratified shares of its training
# patients (`part2_detect.learning_curve`) for the learning curve of the accuracy page.

# %% tags=["hide-input"]
display(book_table(tables["detectors"].set_index(["modality", "detector"]).rename(
                       columns={"train_patients": "patients with training tiles"}),
                   name="tbl-skeleton-detector-datasets",
                   caption="Per detector (modality and fold): the training patients that gave a tile, its validation "
                           "and scored patients, the tiles (`train_slices`) and lesion boxes it trains on, and the "
                           "whole slices it scores.",
                   stage="datasets_skeleton", built_by=datasets.run,
                   params=["part2_detect.leakage", "part2_detect.n_folds", "part2_detect.seed",
                           "part2_detect.slice_size", "part2_detect.tile_size",
                           "part2_detect.negatives_per_positive", "part2_detect.min_box_pixels"],
                   data=f"{out}/detectors.csv", keys=2))

# %% tags=["hide-input"]
display(book_table(tables["learning_curve"].set_index(["modality", "fraction"]),
                   name="tbl-skeleton-learning-curve-datasets",
                   caption="Fold d0's learning-curve runs: per modality and share (`fraction`) of d0's training "
                           "patients, the dataset file, training patients, tiles and lesion boxes.",
                   stage="datasets_skeleton", built_by=datasets.run,
                   params=["part2_detect.learning_curve", "part2_detect.seed"],
                   data=f"{out}/learning_curve.csv", keys=2))

# %% [markdown]
# ## Lesion size at the detector input
#
# Each scored metastasis's largest cross-section, in mm and in detector pixels. A lesion
# narrower than `part2_detect.min_lesion_px` at the input is one whose label covers only
# two native voxels across (one of the smallest spheres, on the native CT or MRI grid).
# These are the lesions that have a box in a scored slice, measured as the box's larger
# side at the detector input: a label too small to give a box of `part2_detect.min_box_pixels`
# is not counted. The data card measures the labels themselves on the native grid, so its
# counts and smallest sizes can differ from these.

# %% tags=["hide-input"]
display(book_table(lesion_size_table(tables["lesion_sizes"], min_px=params["part2_detect"]["min_lesion_px"]),
                   name="tbl-skeleton-lesion-sizes",
                   caption="Per modality: scored metastases, their largest cross-section in mm and in detector pixels "
                           "(smallest, median, largest), and how many are narrower than `part2_detect.min_lesion_px`.",
                   stage="datasets_skeleton", built_by=lesion_size_table,
                   params=["part2_detect.min_lesion_px", "part2_detect.slice_size", "part2_detect.min_box_pixels"],
                   data=f"{out}/lesion_sizes.csv", max_columns=8))

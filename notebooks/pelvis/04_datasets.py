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
# # Detector datasets
#
# | step | thesis says | our choice (`params.yaml`, section `detect`) |
# |---|---|---|
# | data | 220 patients, 72,602 slices | the simulated cohort; lesion slices plus sampled negatives, hot lesion-free slices (the bladder, in the pelvis) always kept |
# | split | not stated | one stratified patient-level train/val/test split (lesion burden above/below the median), shared by every input, so all comparisons are paired |
# | format | not stated | one ultralytics dataset (`images/`, `labels/`, `data.yaml`) and COCO JSON per split for each input a detector trains on; training slices thinned by `train_slice_stride` |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
align_dir = "results/pelvis/align_fuse"
out = "results/pelvis/datasets"
test_align_dir = None

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.stages.pelvis import datasets

split = datasets.run(params, align_dir=align_dir, out=out, test_align_dir=test_align_dir)

# %% tags=["hide-input"]

from crossmodal.report.detection import dataset_table
from crossmodal.report.detection import split_sentence
from crossmodal.report.table import book_table

display(Markdown(f"Profile **{params['profile']}**: patients per split {split_sentence(split)}."))

# %% [markdown]
# ## Patient split
#
# One row per patient: its lesion-burden stratum and its split.

# %% tags=["hide-input"]
display(book_table(split, name=f"tbl-split-{study}",
                   caption="One row per patient: pseudonymous patient and case, lesion-burden stratum (`-1`: the locked "
                           "test cohort) and split.",
                   stage=f"datasets_{study}", built_by=datasets.run, params=["detect.split"], data=f"{out}/split.csv"))

# %% [markdown]
# ## Slices and boxes per input and split
#
# For every input a detector trains on.

# %% tags=["hide-input"]
display(book_table(dataset_table(out, params["detect"]["inputs"]), name=f"tbl-dataset-slices-{study}",
                   caption="Slices, slices with a lesion and lesion boxes per split of every exported detector input.",
                   stage=f"datasets_{study}", built_by=dataset_table, params=["detect.inputs", "detect.split"],
                   data=f"{out}/split.csv", keys=2))

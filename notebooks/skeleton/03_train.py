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
# # Bone metastasis: detector training
#
# ```{admonition} Simulated data
# :class: warning
# Detectors are trained on the simulated skeletal CT/MRI/PET phantom.
# ```
#
# Every (modality, fold) detector of the previous page is trained from scratch (no
# pretrained weights can be downloaded) on its tiles, side by side as
# `compute.detector_runs` allows, and then detects on every whole slice of its scored series
# (`part2_detect.slice_size`); fold d0's learning-curve runs train beside them and detect
# on the same slices (`fraction` below: the share of d0's training patients); detections
# from confidence `part2_detect.predict.ap_conf` are kept. A detector whose training tiles
# hold no lesion has nothing to learn and finds nothing. Each keeps the weights of its last
# epoch (`val: false` in `part2_detect.train.options`: its validation set, its own training
# tiles when `part2_detect.val_fraction` is 0, is scored after the last epoch only; our
# choice, for the time budget). The number of epochs is bounded by the time budget of the
# whole default run on a two-core CPU machine (README), not chosen from a learning curve;
# the accuracy page shows what it buys.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
datasets_dir = "results/skeleton/datasets"
out = "results/skeleton/runs"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import train

params = load_params(params_path, profile)
tables = train.run(params, datasets_dir=datasets_dir, out=out)

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.detectors import training_summary
from crossmodal.report.table import book_table

display(Markdown(f"Profile **{params['profile']}**: " + training_summary(tables["training"])))
display(book_table(tables["training"].set_index(["modality", "detector", "fraction"]),
                   name="tbl-skeleton-training",
                   caption="One row per training run (modality, fold detector and share `fraction` of its training "
                           "patients): patients, tiles, boxes and scored slices, epochs, the weights kept, training "
                           "and prediction seconds, the CPU kernels, the runs trained at once and the stage's seconds.",
                   stage="train_skeleton", built_by=train.run,
                   params=["part2_detect.detector", "part2_detect.scale", "part2_detect.train",
                           "part2_detect.predict", "reproducibility"],
                   data=f"{out}/training.csv", keys=3, max_columns=9))

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
# # Bone metastasis: early fusion with C3D
#
# ```{admonition} Simulated data
# :class: warning
# C3D is trained and tested on the simulated skeletal CT/MRI/PET phantom.
# ```
#
# The thesis compares its late (feature) fusion with C3D on the stacked modalities. Ours is a
# reduced-width C3D (BatchNorm, global pooling) that sees the modalities resampled onto one
# grid per patient as channels (missing modality: zeros), trained on the classifiers' folds
# (the first `c3d.n_repeats` repeats); metrics with patient-bootstrap CIs (level
# `classify.ci`).

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
ingest_dir = "results/skeleton/ingest"
features_dir = "results/skeleton/features"
out = "results/skeleton/c3d"
metrics = None  # DVC metrics JSON, passed by dvc.yaml

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import c3d

params = load_params(params_path, profile)
tables = c3d.run(params, ingest_dir=ingest_dir, features_dir=features_dir, out=out, metrics=metrics)

# %% [markdown]
# The middle slice of each channel for one positive and one negative patient:

# %% tags=["hide-input"]
import numpy as np
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.classifiers import as_image
from crossmodal.report.skeleton.classifiers import c3d_metric_table
from crossmodal.report.skeleton.classifiers import chance_sentence
from crossmodal.report.skeleton.classifiers import channels_figure
from crossmodal.report.table import book_table


# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-c3d-channels", "caption": "The stacked channels C3D sees, one per modality, for a patient with metastases and one without. Stage `c3d_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.channels_figure`; params `c3d.channels`, `c3d.grid_size`; data {download}`channels.npz <../../../results/skeleton/c3d/channels.npz>`."}}
display(as_image(channels_figure(np.load(f"{out}/channels.npz"))))

# %% tags=["hide-input"]
display(book_table(c3d_metric_table(tables["metrics"]), name="tbl-skeleton-c3d-metrics",
                   caption="C3D on the stacked modalities of every patient: each metric out of fold, mean over the "
                           "repeats it trains on, 95 % patient-bootstrap CI.",
                   stage="c3d_skeleton", built_by=c3d_metric_table,
                   params=["c3d.train", "c3d.grid_size", "c3d.channels", "c3d.n_repeats", "classify.n_boot",
                           "classify.ci", "classify.threshold"],
                   data=f"{out}/metrics.csv"))
display(Markdown(chance_sentence(tables["metrics"])))
display(book_table(tables["training"].rename(index={0: "C3D"}), name="tbl-skeleton-c3d-training",
                   caption="The C3D run: patients, channels, grid, fold models and how many trained at once on how "
                           "many threads each, and the seconds spent on the volumes, the training and the sanity gate.",
                   stage="c3d_skeleton", built_by=c3d.run, params=["c3d.grid_size", "c3d.n_repeats", "c3d.train"],
                   data=f"{out}/training.csv", transpose=True))

# %% [markdown]
# ## Sanity gate
#
# Before an early-fusion model may be the comparator of C6 it has to find what any working
# classifier of these images should: lesion presence from one channel alone
# (`c3d.gate.modality`), on the patients who have that modality, on the same folds (C3D with
# `c3d.gate.epochs` epochs there). It passes when its AUC CI lower bound is above
# `c3d.gate.sanity_auc_ci_low` (chance). The cheap early-fusion comparator (the channels'
# joint intensity histogram, the modalities combined voxel by voxel before any detector, and
# a logistic regression) is gated the same way; it stands in for C3D when C3D fails and it
# passes. Its form (`c3d.gate.fallback`) was chosen among a few variants by their AUC on this
# sanity task, before any C6 result was seen: its gate is therefore optimistic for it.

# %% tags=["hide-input"]
from crossmodal.report.skeleton.classifiers import sanity_gate_table

display(book_table(sanity_gate_table(tables["gate"]), name="tbl-skeleton-c3d-gate",
                   caption="Sanity gate per early-fusion model: the task, its patients, AUC with 95 % patient-bootstrap "
                           "CI, the bound its CI lower end must exceed, and whether it passed.",
                   stage="c3d_skeleton", built_by=sanity_gate_table, params=["c3d.gate", "classify.n_boot", "classify.ci"],
                   data=f"{out}/gate.csv"))
display(book_table(c3d_metric_table(tables["fallback_metrics"]).rename(columns={"C3D": "joint histogram"}),
                   name="tbl-skeleton-c3d-fallback-metrics",
                   caption="The cheap early-fusion comparator (joint channel histogram and logistic regression) on all "
                           "channels and patients: each metric out of fold, 95 % patient-bootstrap CI.",
                   stage="c3d_skeleton", built_by=c3d_metric_table,
                   params=["c3d.gate.fallback", "c3d.n_repeats", "classify.n_boot", "classify.ci",
                           "classify.threshold"],
                   data=f"{out}/fallback_metrics.csv"))

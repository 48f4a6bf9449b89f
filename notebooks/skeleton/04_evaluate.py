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
# # Bone metastasis: detector accuracy
#
# ```{admonition} Simulated data
# :class: warning
# Measured on the simulated skeletal CT/MRI/PET phantom.
# ```
#
# AP is computed on every slice of every scored (held-out) series, pooled over a modality's
# detectors, with patient-bootstrap CIs (level `part2_detect.ci`). Lesion sensitivity: share
# of 3-D metastases with a detection centred in one of their boxes at the feature threshold
# (`features.conf`); FP per slice at that threshold.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
datasets_dir = "results/skeleton/datasets"
runs_dir = "results/skeleton/runs"
out = "results/skeleton/evaluate"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import evaluate

params = load_params(params_path, profile)
tables = evaluate.run(params, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out)

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.detectors import boxes_sentence
from crossmodal.report.skeleton.detectors import detector_ap_table
from crossmodal.report.skeleton.classifiers import as_image
from crossmodal.report.skeleton.detectors import learning_curve_figure
from crossmodal.report.skeleton.detectors import learning_curve_table
from crossmodal.report.table import book_table

display(Markdown(boxes_sentence(params)))
display(book_table(detector_ap_table(tables["ap"]), name="tbl-skeleton-detector-ap",
                   caption="Per modality, pooled over its fold detectors on their scored patients: patients, slices, "
                           "lesion boxes, AP50, AP50-95 and lesion sensitivity with 95 % patient-bootstrap CI, and "
                           "false positives per slice at the feature threshold.",
                   stage="evaluate_skeleton", built_by=detector_ap_table,
                   params=["part2_detect.ci", "part2_detect.n_boot", "part2_detect.seed",
                           "part2_detect.lesion_hit", "part2_detect.predict.ap_conf", "features.conf"],
                   data=f"{out}/ap.csv", max_columns=8))

# %% [markdown]
# Per detector (no interval):

# %% tags=["hide-input"]
display(book_table(tables["ap_folds"].set_index(["modality", "detector"]), name="tbl-skeleton-detector-ap-folds",
                   caption="AP50 and AP50-95 of each fold detector on its own scored patients, without an interval.",
                   stage="evaluate_skeleton", built_by=evaluate.run, params=["part2_detect.predict.ap_conf"],
                   data=f"{out}/ap_folds.csv", keys=2))

# %% [markdown]
# ## Learning curve
#
# Does more data help? Fold d0's patients scored by detectors trained on the shares
# `part2_detect.learning_curve` of d0's training patients (nested, label-stratified) and by
# d0 itself (all of them), with patient-bootstrap CIs. A curve still rising at 100 % says a larger cohort would give a
# better detector.

# %% tags=["hide-input"]
display(book_table(learning_curve_table(tables["learning_curve"]), name="tbl-skeleton-learning-curve",
                   caption="Fold d0's patients scored by detectors trained on a share of d0's training patients: "
                           "training patients and tiles, AP50 and lesion sensitivity with 95 % patient-bootstrap CI.",
                   stage="evaluate_skeleton", built_by=learning_curve_table,
                   params=["part2_detect.ci", "part2_detect.n_boot", "part2_detect.seed",
                           "part2_detect.lesion_hit", "features.conf"],
                   data=f"{out}/learning_curve.csv", keys=2))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-learning-curve", "caption": "Held-out AP50 of fold d0's detectors trained on nested shares of their training patients. Stage `evaluate_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.detectors.learning_curve_figure`; params `part2_detect`; data {download}`learning_curve.csv <../../../results/skeleton/evaluate/learning_curve.csv>`."}}
display(as_image(learning_curve_figure(tables["learning_curve"])))

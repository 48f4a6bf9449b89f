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
# # Bone metastasis: classifiers and feature sets
#
# ```{admonition} Simulated data
# :class: warning
# Classifiers trained and tested on the simulated skeletal CT/MRI/PET phantom.
# ```
#
# Repeated stratified k-fold on patients (folds drawn once and shared by every model);
# out-of-fold probabilities; each metric averaged over repeats with a patient-bootstrap CI
# (level `classify.ci`). A single-modality set is scored on the patients who have that
# modality, the fused set on everyone. The thesis names "several machine-learning
# classifiers"; the list and their fixed hyperparameters are ours.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
features_dir = "results/skeleton/features"
out = "results/skeleton/classify"
metrics = None  # DVC metrics JSON, passed by dvc.yaml

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import classify

params = load_params(params_path, profile)
tables = classify.run(params, features_dir=features_dir, out=out, metrics=metrics)

# %% [markdown]
# Accuracy and AUC:

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.classifiers import as_image
from crossmodal.report.skeleton.classifiers import auc_p_values_table
from crossmodal.report.skeleton.classifiers import curves_figure
from crossmodal.report.skeleton.classifiers import fused_vs_single_table
from crossmodal.report.skeleton.classifiers import metric_table

display(metric_table(tables["metrics"], ("accuracy", "auc")))

# %% [markdown]
# Sensitivity, specificity, F1 and PR-AUC:

# %% tags=["hide-input"]
display(metric_table(tables["metrics"], ("sensitivity", "specificity", "f1", "pr_auc")))
if len(tables["skipped"]):
    display(Markdown("Models that could not be cross-validated on this cohort (and why):"))
    display(tables["skipped"])

# %% [markdown]
# ## ROC and PR curves
#
# Per classifier, from each patient's mean out-of-fold probability; the fused feature set is
# the thick line. Single-modality curves are on their own patients.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-roc-pr", "caption": "ROC and precision–recall curves per classifier and feature set (thick: fused). Stage `classify_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.curves_figure`; params `classify`; data {download}`roc.csv <../../../results/skeleton/classify/roc.csv>`, {download}`pr.csv <../../../results/skeleton/classify/pr.csv>`."}}
display(as_image(curves_figure(tables["roc"], tables["pr"]), dpi=90))

# %% [markdown]
# ## Fused versus single modality
#
# Fused minus single-modality features on the patients who have that modality: per
# classifier and averaged over classifiers (one patient bootstrap shared by all), and
# DeLong's test of the two AUCs (per-patient mean out-of-fold scores).

# %% tags=["hide-input"]
display(fused_vs_single_table(tables["comparisons"]))
if len(tables["delong"]):
    display(Markdown("DeLong p-values, fused vs single modality:"))
    display(auc_p_values_table(tables["delong"]).map(lambda p: f"{p:.3g}"))

# %% [markdown]
# ## The models the claims use: nested selection
#
# Picking the best of the classifiers on the out-of-fold predictions one then reports is
# optimistic. The claims use nested cross-validation instead: in every outer training set an
# inner stratified k-fold (`classify.nested.inner_splits`) picks the classifier with the best
# inner AUC, on the training patients only; the chosen model is refitted there and predicts
# the outer test fold. How often each classifier was chosen:

# %% tags=["hide-input"]
from crossmodal.report.skeleton.classifiers import calibration_table
from crossmodal.report.skeleton.classifiers import chosen_table
from crossmodal.report.skeleton.classifiers import nested_comparison_table
from crossmodal.report.skeleton.classifiers import reliability_figure

display(chosen_table(tables["nested_choices"]))

# %% [markdown]
# ## Fused versus single modality, like for like
#
# Nested models, fused minus single on the patients who have that modality. *like for like*:
# the fused model is trained and tested on those same patients (the claims' primary
# comparison); *all patients*: the fused model trained on everyone, scored on them (beside it).
# `n` is the number of patients compared.

# %% tags=["hide-input"]
display(nested_comparison_table(tables["nested_comparisons"]))

# %% [markdown]
# ## Calibration
#
# Brier score (mean squared difference between the out-of-fold probability and the label,
# averaged over repeats; 0.25 is a constant 0.5) with its patient-bootstrap CI, and the
# confusion counts at `classify.threshold` (mean per repeat), for every nested model. The
# reliability curve bins the out-of-fold probabilities: a calibrated model lies on the diagonal.

# %% tags=["hide-input"]
display(calibration_table(tables["calibration"], tables["confusion"]))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-reliability", "caption": "Reliability of the nested models' probabilities: observed rate against predicted probability. Stage `classify_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.reliability_figure`; params `classify`; data {download}`reliability.csv <../../../results/skeleton/classify/reliability.csv>`."}}
display(as_image(reliability_figure(tables["reliability"]), dpi=90))

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
from crossmodal.report.skeleton.classifiers import chance_sentence
from crossmodal.report.skeleton.classifiers import curves_figure
from crossmodal.report.skeleton.classifiers import fused_vs_single_table
from crossmodal.report.skeleton.classifiers import metric_table
from crossmodal.report.table import book_table

metric_params = ["classify.classifiers", "classify.cv", "classify.n_boot", "classify.ci", "classify.threshold"]

display(book_table(metric_table(tables["metrics"], ("accuracy", "auc")), name="tbl-skeleton-accuracy-auc",
                   caption="Accuracy and AUC per classifier (rows) and feature set (columns; a single modality on the "
                           "patients who have it, fused on everyone), mean over repeats, 95 % patient-bootstrap CI.",
                   stage="classify_skeleton", built_by=metric_table, params=metric_params,
                   data=f"{out}/metrics.csv", max_columns=5))
display(Markdown(chance_sentence(tables["metrics"])))

# %% [markdown]
# Sensitivity, specificity, F1 and PR-AUC:

# %% tags=["hide-input"]
display(book_table(metric_table(tables["metrics"], ("sensitivity", "specificity", "f1", "pr_auc")),
                   name="tbl-skeleton-sensitivity-specificity",
                   caption="Sensitivity, specificity and F1 at `classify.threshold`, and PR-AUC, per classifier (rows) "
                           "and feature set (columns), mean over repeats, 95 % patient-bootstrap CI.",
                   stage="classify_skeleton", built_by=metric_table, params=metric_params,
                   data=f"{out}/metrics.csv", max_columns=5))
if len(tables["skipped"]):
    display(book_table(tables["skipped"], name="tbl-skeleton-skipped-models",
                       caption="Models that could not be cross-validated on this cohort: classifier, feature set, "
                               "patients and why.",
                       stage="classify_skeleton", built_by=classify.run, params=["classify.cv", "classify.nested"],
                       data=f"{out}/skipped.csv"))

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
display(book_table(fused_vs_single_table(tables["comparisons"]), name="tbl-skeleton-fused-vs-single",
                   caption="Fused minus single-modality features on the patients who have that modality, per "
                           "classifier and averaged over classifiers (rows), per metric and modality (columns), "
                           "paired patient-bootstrap 95 % CI.",
                   stage="classify_skeleton", built_by=fused_vs_single_table, params=metric_params,
                   data=f"{out}/comparisons.csv", max_columns=4))
if len(tables["delong"]):
    display(book_table(auc_p_values_table(tables["delong"]), name="tbl-skeleton-delong",
                       caption="DeLong p-values of fused versus single-modality AUC per classifier (rows) and "
                               "modality (columns), on per-patient mean out-of-fold scores.",
                       stage="classify_skeleton", built_by=auc_p_values_table,
                       params=["classify.classifiers", "classify.cv"], data=f"{out}/delong.csv"))

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

display(book_table(chosen_table(tables["nested_choices"]), name="tbl-skeleton-nested-choices",
                   caption="Outer folds in which each classifier (columns) was chosen by inner AUC, per nested model "
                           "(rows: feature set and the patients it is trained and tested on).",
                   stage="classify_skeleton", built_by=chosen_table,
                   params=["classify.classifiers", "classify.nested", "classify.cv"],
                   data=f"{out}/nested_choices.csv", max_columns=6))

# %% [markdown]
# ## Fused versus single modality, like for like
#
# Nested models, fused minus single on the patients who have that modality. *like for like*:
# the fused model is trained and tested on those same patients (the claims' primary
# comparison); *all patients*: the fused model trained on everyone, scored on them (beside it).
# `n` is the number of patients compared.

# %% tags=["hide-input"]
display(book_table(nested_comparison_table(tables["nested_comparisons"]), name="tbl-skeleton-nested-comparisons",
                   caption="Nested fused model minus the single-modality one per modality, like for like and with the "
                           "fused model of all patients, on the `n` patients who have that modality; AUC, accuracy "
                           "and PR-AUC, paired patient-bootstrap 95 % CI.",
                   stage="classify_skeleton", built_by=nested_comparison_table,
                   params=["classify.nested", "classify.cv", "classify.n_boot", "classify.ci", "classify.threshold"],
                   data=f"{out}/nested_comparisons.csv", keys=3))

# %% [markdown]
# ## Calibration
#
# Brier score (mean squared difference between the out-of-fold probability and the label,
# averaged over repeats; 0.25 is a constant 0.5) with its patient-bootstrap CI, and the
# confusion counts at `classify.threshold` (mean per repeat), for every nested model. The
# reliability curve bins the out-of-fold probabilities: a calibrated model lies on the diagonal.

# %% tags=["hide-input"]
display(book_table(calibration_table(tables["calibration"], tables["confusion"]),
                   name="tbl-skeleton-calibration",
                   caption="Per nested model: Brier score with its 95 % patient-bootstrap CI, patients, and the "
                           "confusion counts at the threshold (mean per repeat).",
                   stage="classify_skeleton", built_by=calibration_table,
                   params=["classify.nested", "classify.n_boot", "classify.ci", "classify.threshold"],
                   data=[f"{out}/calibration.csv", f"{out}/confusion.csv"], max_columns=8))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-reliability", "caption": "Reliability of the nested models' probabilities: observed rate against predicted probability. Stage `classify_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.classifiers.reliability_figure`; params `classify`; data {download}`reliability.csv <../../../results/skeleton/classify/reliability.csv>`."}}
display(as_image(reliability_figure(tables["reliability"]), dpi=90))

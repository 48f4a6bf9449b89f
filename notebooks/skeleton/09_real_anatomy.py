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
# # Real anatomy: Part 2 on a real skeleton
#
# ```{admonition} Real CT, simulated MR and PET, inserted findings
# :class: warning
# The CT is a real scan (a male abdomen and pelvis, TotalSegmentator's example case),
# untouched outside the inserted findings. The metastases and the benign mimics are
# **simulated findings inserted** into its real vertebrae, hips, sacrum, ribs and femurs,
# drawn from the skeletal phantom's ranges. The MR and the PET are **simulated** from the
# real CT's tissues (fat, soft tissue, kidneys, bladder, cortex and marrow of the real
# bones) with the phantom's scanner models. The patient is male; the study's question is
# breast-cancer bone metastasis. Every hybrid patient shares this one skeleton, so the
# intervals cover the finding draws, the modalities each patient has and the noise, not
# the variation between patients. Nothing here is clinical performance.
# ```
#
# The question: do the per-modality detectors and the classifiers that Part 2 trained on
# the analytic skeletal phantom hold on real bones (their real shapes, cortex, marrow
# texture and whatever the real skeleton holds that nobody labelled)? Nothing is trained or
# chosen on this cohort. Comparisons here are exploratory, outside the pre-specified family
# of the claims page.
#
# | step | our choice (`params.yaml`) |
# |---|---|
# | anatomy | `real_data.totalsegmentator`: fetched from PyPI, pinned by SHA-256, the whole CT |
# | findings | `phantom.skeleton`'s counts, types, sizes, looks and modality-specific evidence; centred in the marrow of the real `bone_structures` of their site, cut to that bone |
# | MR and PET | tissue classes of the real CT (`phantom.skeleton_real_anatomy`: `hu_tissues`, `tissue_structures`, `cortex_hu`) with the phantom's T1 and SUV values, bias field, PSF and noise, on the phantom's voxel spacing |
# | detection | each modality's fold-d0 detector, every slice of every series, scored as the phantom's |
# | classification | the classifier nested CV chose most often for the fused features, fitted on every phantom patient |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
ingest_dir = "results/skeleton/ingest"
datasets_dir = "results/skeleton/datasets"
runs_dir = "results/skeleton/runs"
features_dir = "results/skeleton/features"
classify_dir = "results/skeleton/classify"
evaluate_dir = "results/skeleton/evaluate"
out = "results/skeleton/real_anatomy"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import real_anatomy

params = load_params(params_path, profile)
tables = real_anatomy.run(params, ingest_dir=ingest_dir, datasets_dir=datasets_dir, runs_dir=runs_dir,
                          features_dir=features_dir, classify_dir=classify_dir, out=out)

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.real_anatomy import provenance_sentence
from crossmodal.report.skeleton.classifiers import as_image
from crossmodal.report.skeleton.classifiers import fused_vs_single_table
from crossmodal.report.skeleton.classifiers import metric_table
from crossmodal.report.skeleton.real_anatomy import classifier_sentence
from crossmodal.report.skeleton.real_anatomy import detector_transfer_table
from crossmodal.report.skeleton.real_anatomy import findings_table
from crossmodal.report.skeleton.real_anatomy import hybrid_panel_figure
from crossmodal.report.table import book_table

hybrid = params["phantom"]["skeleton_real_anatomy"]
display(Markdown(provenance_sentence(params["real_data"][hybrid["real_data"]]["root"])))
display(book_table(findings_table(tables["findings"]), name="tbl-real-skeleton-findings",
                   caption="Findings inserted into the real skeleton: per kind and type, how many, in how many "
                           "patients, at which sites, and which modalities show each metastasis (evidence) or "
                           "which modality each mimic fools.",
                   stage="real_anatomy_skeleton", built_by=findings_table,
                   params=["phantom.skeleton_real_anatomy", "phantom.skeleton"], data=f"{out}/findings.csv", keys=2))

# %% [markdown]
# ## Detectors: from the phantom to a real skeleton
#
# Per modality, AP50 and lesion sensitivity (a detection centred in a metastasis's box at
# the feature threshold) with 95 % patient-bootstrap CIs: on the phantom's scored patients
# (all fold detectors, as the detector page reports them) and on the hybrid cohort (fold
# d0's detector).

# %% tags=["hide-input"]
phantom_ap = pd.read_csv(Path(evaluate_dir) / "ap.csv")
display(book_table(detector_transfer_table(phantom_ap, tables["ap"]), name="tbl-real-skeleton-detectors",
                   caption="Per modality: AP50 and lesion sensitivity on the phantom and on the real skeleton, 95 % "
                           "patient-bootstrap CI, and the change.",
                   stage="real_anatomy_skeleton", built_by=detector_transfer_table,
                   params=["part2_detect.ci", "part2_detect.n_boot", "part2_detect.lesion_hit", "features.conf"],
                   data=[Path(evaluate_dir) / "ap.csv", f"{out}/ap.csv"], max_columns=7))

# %% [markdown]
# ## Classifiers: fused and single-modality features on a real skeleton

# %% tags=["hide-input"]
n_phantom = len(pd.read_csv(Path(features_dir) / "features.csv"))
display(Markdown(classifier_sentence(tables["classifier"], n_phantom)))
display(book_table(metric_table(tables["metrics"], ("accuracy", "auc")), name="tbl-real-skeleton-classifiers",
                   caption="Accuracy and AUC of each feature set on the hybrid patients who have it (fused: all of "
                           "them), 95 % patient-bootstrap CI.",
                   stage="real_anatomy_skeleton", built_by=metric_table,
                   params=["classify.n_boot", "classify.ci", "classify.threshold"], data=f"{out}/metrics.csv"))

# %% [markdown]
# Fused minus each single modality, on the hybrid patients who have that modality
# (exploratory, paired patient bootstrap, no multiplicity control):

# %% tags=["hide-input"]
display(book_table(fused_vs_single_table(tables["comparisons"]), name="tbl-real-skeleton-fused-vs-single",
                   caption="Fused minus single-modality features on the real skeleton's patients who have that "
                           "modality: accuracy, AUC and PR-AUC differences, 95 % paired patient-bootstrap CI.",
                   stage="real_anatomy_skeleton", built_by=fused_vs_single_table,
                   params=["classify.n_boot", "classify.ci"], data=f"{out}/comparisons.csv", max_columns=6))

# %% [markdown]
# ## Qualitative panel
#
# A hybrid patient with a metastasis: each of its series at the slice with the largest
# labelled cross-section, the label outlined in red.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-real-skeleton-panel", "caption": "A hybrid patient: real CT (bone window), simulated MR and PET, each at its largest labelled metastasis cross-section, the label outlined. Stage `real_anatomy_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.real_anatomy.hybrid_panel_figure`; params `phantom.skeleton_real_anatomy`; data {download}`findings.csv <../../../results/skeleton/real_anatomy/findings.csv>`."}}
display(as_image(hybrid_panel_figure(Path(out) / "ingest", tables["findings"], tables["series"])))

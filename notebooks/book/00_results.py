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
# # Cross-modal image fusion: an open reproduction
#
# ```{admonition} Every result in this book is from simulated or partly simulated data
# :class: warning
# No real PET/CT cohort with lesion labels can be downloaded where this study is built.
# The embedded cohorts the seven claims are tested on are therefore **physically grounded
# phantoms** that the pipeline generates and writes as real DICOM series, which then flow
# through the same ingestion a hospital's data would. Beside them, hybrids put simulated PET
# and lesions on **real CT** from the package registry: the real-anatomy chapter, and the
# lung study, whose test lesions are real tumour delineations. Every chapter says what in
# its data is real. None of it measures clinical performance. Real-data adapters (DICOM
# trees, the autoPET NIfTI layout) are part of the package, and the test suite exercises
# ingestion on real public CT series.
# ```
#
# This book re-implements, end to end, the two studies of a 2023 doctoral thesis on
# cross-modal image fusion in medical imaging (Peking Union Medical College; supervisor
# Qiu Guixing), and regenerates every table and figure from a versioned pipeline.
#
# ## Results at a glance
#
# Profile **{glue:text}`profile`**. Part 1, PET/CT fusion for cervical-cancer lesion
# detection: C1 {glue:text}`C1_verdict`, C2 {glue:text}`C2_verdict`,
# C3 {glue:text}`C3_verdict`, C4 {glue:text}`C4_verdict`. Part 2, CT/MRI/PET fusion for
# breast-cancer bone metastasis: C5 {glue:text}`C5_verdict`, C6 {glue:text}`C6_verdict`,
# C7 {glue:text}`C7_verdict`.
#
# ```{glue:md} glance_table
# :format: myst
# ```
#
# One row per primary comparison of the pre-specified analysis (a claim has one per
# detector in Part 1 and one per comparator in Part 2). *Ours* is the difference *proposed
# minus comparator* on the claim's metric (for C3, false positives per patient: lower is
# better), with its unadjusted 95 % confidence interval; the *thesis value* is the gain its
# abstract states, read as an absolute difference (our reading). The verdict is read from
# the Holm-adjusted p-value: *supported*, *contradicted* or *inconclusive*; *not measurable*
# when no finite difference exists or the comparison has too few detectors, *comparator not
# measurable* when the comparator failed its sanity gate (named in brackets). A dash marks
# a value that does not apply: the thesis gives no number, or the row has no verdict to
# carry an estimate (its difference is on the chapter page, beside the gate it failed).
#
# ## Where to read on
#
# * [The study](../../intro.md): the thesis, its seven claims, how this book measures each,
#   and where the thesis is silent, our choices.
# * The evidence: [claims C1–C4](../pelvis/07_claims.ipynb) (Part 1) and
#   [claims C5–C7](../skeleton/08_claims.ipynb) (Part 2), each after the chapters of its
#   steps.
# * Real anatomy: the phantom-trained models on real CT, with simulated PET (and MR) and
#   inserted lesions: [Part 1 on a real pelvis](../pelvis/08_real_anatomy.ipynb) and
#   [Part 2 on a real skeleton](../skeleton/09_real_anatomy.ipynb).
# * [A first fork](../lung/07_claims.ipynb): Part 1 forked by configuration for lung
#   cancer, trained on tumours inserted into a real chest CT and tested on real tumour
#   delineations; its claims are asked of lung cancer, not the thesis's. How it was made:
#   [Fork this study](fork.ipynb).
# * [Reproduce this book](reproduce.ipynb): the two commands, the profile, the packages,
#   the machine, each stage's wall time and the hashes of this run.
#
# ```{tableofcontents}
# ```
#
# ## How this page is made
#
# The values above are pasted (MyST-NB `glue`) from the claims stages' tables,
# `results/pelvis/claims/claims.csv` and `results/skeleton/claims/claims.csv`, when the book
# is built; the cells below read them (`crossmodal.report.book`).

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
pelvis_claims = "results/pelvis/claims"
skeleton_claims = "results/skeleton/claims"

# %% tags=["hide-input"]
from IPython.display import Markdown
from myst_nb import glue

from crossmodal.params import load_params
from crossmodal.report.book import claim_summary
from crossmodal.report.book import glance_table
from crossmodal.report.book import read_claims
from crossmodal.report.table import book_table

EVIDENCE = {"pelvis": "[C1–C4](../pelvis/07_claims.ipynb)",
            "skeleton": "[C5–C7](../skeleton/08_claims.ipynb)"}

claims = read_claims(pelvis_claims, skeleton_claims)
glue("profile", load_params(params_path, profile)["profile"], display=False)
glance = book_table(glance_table(claims, EVIDENCE), name="tbl-glance",
                    caption="The seven claims at a glance: thesis value against ours (proposed minus comparator, "
                            "unadjusted 95 % CI) and the verdict, with the page that holds the evidence.",
                    stage=["claims_pelvis", "claims_skeleton"], built_by=glance_table,
                    params=["detect.analysis", "classify.analysis"],
                    data=[f"{pelvis_claims}/claims.csv", f"{skeleton_claims}/claims.csv"])
glue("glance_table", Markdown(glance._repr_markdown_()), display=False)
for name, values in claim_summary(claims).items():
    for key, text in values.items():
        glue(f"{name}_{key}", text, display=False)

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
# # Bone metastasis: data card, and what fusion can gain
#
# ```{admonition} Computed before any detector trains
# :class: important
# Everything on this page comes from the ingested series, their metastasis labels and the
# phantom's truth sidecars, on the **true regions**: every metastasis and every benign
# mimic, on every series. No detector has been trained when it is computed, so the
# detector and classifier pages that follow can be read against it.
# ```
#
# ```{admonition} Simulated data
# :class: warning
# The default cohort is the simulated skeletal CT/MRI/PET phantom. Some metastases are
# missed by one or two modalities by design: PET-occult sclerotic metastases, MRI-only
# early marrow lesions, CT-occult marrow lesions; and each benign mimic fools one modality.
# Their shares and looks are `phantom.skeleton` parameters, each with its source (a
# citation or "our estimate") in `params.yaml`. An occult metastasis is still labelled in
# every series (it is a metastasis): a single-modality detector cannot reach a lesion
# sensitivity of 1, which is what fusing the modalities may win back.
# ```
#
# | part | what | how (parameters in `params.yaml`, section `data_card_skeleton`) |
# |---|---|---|
# | phenomena | patients per modality and class; metastases per type, evidence kind and designed visibility; mimics per type | counted from the truth sidecars |
# | visibility | which modality shows which kind of region, as measured | conspicuity of each true region on each series against the patient's own marrow (spheres at the finding-free vertebral bodies), seen at or above `thresholds` |
# | sizes | metastasis sizes per modality | largest in-plane bounding-box side over the slices, mm |
# | oracle | bone metastasis vs none per patient from one modality vs every modality the patient has | standardised logistic regression on per-modality features (regions seen, max excess conspicuity), patient-grouped folds, AUC and AP with patient-bootstrap CIs, paired difference |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
ingest_dir = "results/skeleton/ingest"
out = "results/skeleton/data_card"
metrics = "results/skeleton/metrics/data_card.json"

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import data_card

params = load_params(params_path, profile)
tables = data_card.run(params, ingest_dir=ingest_dir, out=out, metrics=metrics)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.data_card import conspicuity_figure
from crossmodal.report.skeleton.data_card import fusion_sentence
from crossmodal.report.skeleton.data_card import oracle_view
from crossmodal.report.skeleton.data_card import phenomena_view
from crossmodal.report.skeleton.data_card import sizes_view
from crossmodal.report.skeleton.data_card import visibility_view
from crossmodal.report.table import book_table

# %% [markdown]
# ## Phenomena
#
# Patients per class and modality (a patient has one to three series), then the
# metastases per type, per evidence kind (`all`: seen by every modality) and per modality
# as designed (visible or occult), then the mimics per type and the modality each is
# designed to fool. The share is of the group: patients of the class, metastases, mimics.

# %% tags=["hide-input"]
display(book_table(phenomena_view(tables["phenomena"]), name="tbl-skeleton-phenomena",
                   caption="Counts per group (patients per class and modality; metastases per type, evidence kind and "
                           "designed visibility; mimics per type and the modality each fools), the share of the group "
                           "in per cent, and the patients with at least one.",
                   stage="data_card_skeleton", built_by=phenomena_view, params=["cohort.skeleton.modalities"],
                   data=f"{out}/phenomena.csv", keys=2))

# %% [markdown]
# ## Which modality sees what, measured on the images
#
# Each true region's conspicuity on each series: CT root mean square of HU - marrow, MRI T1 darkening
# (1 - region / marrow), PET SUVmax / marrow - 1, against the patient's own normal marrow
# on that series. Per kind of region and modality: regions seen (at or above the
# threshold) / regions, and in brackets how many the design makes visible there. A mimic
# is designed to fool one modality only; on the images, regions next to cortex or an
# endplate also take its density and T1 darkness by partial volume, which these counts show.

# %% tags=["hide-input"]
display(book_table(visibility_view(tables["visibility"]), name="tbl-skeleton-visibility",
                   caption="True regions seen at or above the modality's conspicuity threshold / true regions, per kind "
                           "of region (rows) and modality (columns); in brackets how many the design makes visible.",
                   stage="data_card_skeleton", built_by=visibility_view,
                   params=["data_card_skeleton.thresholds", "data_card_skeleton.reference_radius_mm"],
                   data=f"{out}/visibility.csv"))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-conspicuity", "caption": "Conspicuity of every metastasis and mimic region per modality against the patient's own marrow. Stage `data_card_skeleton`; drawn by {py:func}`crossmodal.report.skeleton.data_card.conspicuity_figure`; params `data_card_skeleton`; data {download}`regions.csv <../../../results/skeleton/data_card/regions.csv>`."}}
fig = conspicuity_figure(tables["regions"])
plt.show()

# %% [markdown]
# ## Metastasis sizes
#
# Per modality: metastases on its series and their largest in-plane extent (the longer
# side of the bounding box, the largest over the slices), in mm.

# %% tags=["hide-input"]
display(book_table(sizes_view(tables["sizes_summary"]), name="tbl-skeleton-metastasis-sizes",
                   caption="Per modality: metastases on its series, how many cover no voxel, and the smallest, median "
                           "and largest in-plane extent (mm).",
                   stage="data_card_skeleton", built_by=sizes_view, params=["cohort.skeleton.modalities"],
                   data=f"{out}/sizes_summary.csv"))

# %% [markdown]
# ## The oracle: how much can fusion gain here?
#
# Per patient and modality, from the true regions only: how many are seen and by how much
# the most conspicuous one exceeds the threshold (a region below it counts as unseen, so
# that the mere presence of a true region, which the oracle knows and a detector does
# not, carries no evidence). A standardised logistic regression tells bone metastasis
# from none, out of fold over patient-grouped folds. Like for like: for each modality, on
# the patients who have it, that modality alone and combined with whatever else they have
# (a missing modality's features imputed, with presence flags); then on the patients with
# every modality, each alone, combined, and combined minus the best single one on the
# same bootstrap resamples (choosing the best on the same data favours it: the difference
# is conservative).

# %% tags=["hide-input"]
display(book_table(oracle_view(tables["oracle"]), name="tbl-skeleton-oracle",
                   caption="Oracle on the true regions: out-of-fold AUC and AP of bone metastasis vs none per subset of "
                           "patients and feature set, with patients per class and patient-bootstrap CIs; a "
                           "*minus* row is the paired difference.",
                   stage="data_card_skeleton", built_by=oracle_view,
                   params=["data_card_skeleton.oracle", "data_card_skeleton.thresholds",
                           "data_card_skeleton.min_per_class", "data_card_skeleton.n_boot", "data_card_skeleton.ci"],
                   data=f"{out}/oracle.csv", keys=2))

# %% tags=["hide-input"]
display(Markdown(fusion_sentence(tables["oracle"])))

# %% [markdown]
# The oracle is a reference for these simple features, not a bound on every model: it is
# given the true regions, so it does not have to find them.

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
# # Data card: what the cohort holds, and what fusion can gain
#
# ```{admonition} Computed before any detector trains
# :class: important
# Everything on this page comes from the ingested images, their labels and (for the
# simulated cohort) the phantom's truth sidecars, on **ground-truth candidate regions**:
# every lesion and every lesion mimic. No detector has been trained when it is computed, so
# the detector results of the later pages can be read against it, not the other way round.
# ```
#
# | part | what | how (parameters in `params.yaml`, section `data_card`) |
# |---|---|---|
# | parameters | every parameter of the cohort's `phantom` section (and of the section it is `based_on`) | its value and its source (a citation, or "our estimate") |
# | phenomena | how often each simulated phenomenon occurs | counted over patients from the truth sidecars |
# | sizes | lesion and mimic extent in mm and in detector pixels | largest slice's bounding box on the CT grid, through each case's localised crop and letterbox (`align_fuse.image_size`) |
# | oracle | how well PET, CT and both separate lesions from mimics | standardised logistic regression on per-candidate features, out of fold over patient-grouped folds; AUC and AP with patient-bootstrap CIs |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
ingest_dir = "results/pelvis/ingest"
align_dir = "results/pelvis/align_fuse"
out = "results/pelvis/data_card"
metrics = "results/pelvis/metrics/data_card.json"

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.stages.pelvis import data_card

tables = data_card.run(params, ingest_dir=ingest_dir, align_dir=align_dir, out=out, metrics=metrics)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt

from crossmodal.report.data_card import candidates_figure
from crossmodal.report.data_card import crop_sentence
from crossmodal.report.data_card import fusion_gain_sentence
from crossmodal.report.data_card import oracle_view
from crossmodal.report.data_card import phenomena_view
from crossmodal.report.data_card import sizes_figure
from crossmodal.report.data_card import sizes_view
from crossmodal.report.data_card import truth_sentence
from crossmodal.report.table import book_table

card = params["data_card"]
display(Markdown(truth_sentence(tables["candidates"])))

# %% [markdown]
# ## Phantom parameters and their sources
#
# Every parameter of the simulated cohort, with the value this run used and where the
# value comes from. (Empty for a real-data cohort.)

# %% tags=["hide-input"]
display(book_table(tables["parameters"], name=f"tbl-phantom-parameters-{study}",
                   caption=f"Every parameter of `phantom.{params['study']['cohort']}`: the value this run used and its source.",
                   stage=f"data_card_{study}", built_by=data_card.parameter_table, params=[f"phantom.{params['study']['cohort']}"],
                   data=f"{out}/parameters.csv"))

# %% [markdown]
# The references those sources cite:

# %% tags=["hide-input"]
display(book_table(tables["references"], name=f"tbl-phantom-references-{study}",
                   caption="The full references the parameters' sources cite.",
                   stage=f"data_card_{study}", built_by=data_card.reference_table, params=[f"phantom.{params['study']['cohort']}"],
                   data=f"{out}/references.csv"))

# %% [markdown]
# ## Phenomena
#
# Per phenomenon: the total over patients (counts and flags), the patients that have it,
# and the median per patient. Then the lesions per kind, site and PET avidity, and the
# mimics per kind (structures hot on PET that are not lesions).

# %% tags=["hide-input"]
display(book_table(phenomena_view(tables["phenomena"]), name=f"tbl-phenomena-{study}",
                   caption="Every simulated phenomenon: total over patients, the patients that have it and the median "
                           "per patient; then lesions by kind, site and PET avidity, and mimics by kind.",
                   stage=f"data_card_{study}", built_by=phenomena_view, params=[f"phantom.{params['study']['cohort']}"],
                   data=f"{out}/phenomena.csv", keys=2))

# %% [markdown]
# ## Lesion and mimic sizes
#
# Largest in-plane extent of each candidate (the larger side of the bounding box in its
# largest slice), in mm and in detector pixels after the case's crop and letterbox. The
# issue's target is that the smallest primary lesion spans at least the target size below
# (YOLO's coarsest stride is 8 pixels).

# %% tags=["hide-input"]
display(Markdown(crop_sentence(tables["sizes_summary"])))
display(book_table(sizes_view(tables["sizes_summary"]), name=f"tbl-sizes-{study}",
                   caption="Largest in-plane extent of the lesions and mimics in mm and in detector pixels, against "
                           "the target size.",
                   stage=f"data_card_{study}", built_by=sizes_view, params=["data_card.target_px", "align_fuse.image_size"],
                   data=f"{out}/sizes_summary.csv"))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-lesion-sizes-{{ study }}", "caption": "Lesion sizes at the detector input against the target size. Stage `data_card_{{ study }}`; drawn by {py:func}`crossmodal.report.data_card.sizes_figure`; params `data_card`; data {download}`sizes.csv <../../../{{ out }}/sizes.csv>`."}}
fig = sizes_figure(tables["sizes"], target_px=card["target_px"])
plt.show()

# %% [markdown]
# ## The oracle: how much can fusion gain here?
#
# For every candidate, PET-only features (from PET resampled onto the CT grid through the
# align_fuse stage's refined transform, inside the candidate and in a shell around it) and
# CT-only features (HU statistics, fat in the shell, elongation, volume: the shape comes from
# the ground-truth region, which on a real image CT delineates). A standardised logistic
# regression separates lesions from mimics, out of fold over patient-grouped folds (no
# patient in the training and the test part of a fold). AUC and AP with 95 %
# patient-bootstrap CIs; the last row per target is PET+CT minus PET-only on the same
# resamples. The second target is the primary lesion alone against every mimic.

# %% tags=["hide-input"]
display(book_table(oracle_view(tables["oracle"]), name=f"tbl-oracle-{study}",
                   caption="The oracle: out-of-fold AUC and AP of PET-only, CT-only and PET+CT features separating true "
                           "candidates from mimics, 95 % patient-bootstrap CI; per target, the last row is PET+CT minus "
                           "PET-only on the same resamples.",
                   stage=f"data_card_{study}", built_by=oracle_view, params=["data_card.features", "data_card.oracle"],
                   data=f"{out}/oracle.csv", keys=2))

# %% tags=["hide-input"]
display(Markdown(fusion_gain_sentence(tables["oracle"])))

# %% [markdown]
# Each candidate's SUVmax against its mean CT density: where the mimics overlap the lesions
# on the horizontal axis, PET alone cannot tell them apart, and whatever CT separates
# vertically is what a fusion can add.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-candidates-{{ study }}", "caption": "True candidates and mimics by what each modality shows of them. Stage `data_card_{{ study }}`; drawn by {py:func}`crossmodal.report.data_card.candidates_figure`; params `data_card`; data {download}`candidates.csv <../../../{{ out }}/candidates.csv>`."}}
fig = candidates_figure(tables["candidates"])
plt.show()

# %% [markdown]
# The oracle is an upper reference for these features, not a bound on every detector: it is
# given the true regions, so it does not have to find them, and it sees only the features
# listed in `data_card.features`.

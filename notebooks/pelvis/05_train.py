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
# # Detector training
#
# | step | thesis says | our choice (`params.yaml`, section `detect`) |
# |---|---|---|
# | detectors | several object detectors, fused input fed channel-wise | the package trains ultralytics YOLOv5u, YOLOv8, YOLO11 (nano) and torchvision Faster R-CNN (ResNet-18 FPN), all from scratch (no pretrained weights can be downloaded); **which of them a profile trains, on which inputs and with how many seeds, is `detect.detectors` and `detect.seeds`: the plan of this build is printed below** |
# | runs | not stated | every (detector, input, seed) of the plan trained from scratch, side by side as `compute.detector_runs` allows; raw detections (confidence ≥ `detect.predict.conf`) stored for the validation and test patients |
# | epochs, checkpoint | not stated | `detect.train.epochs` from a measured learning curve (validation patients; `benchmarks/bench_learning_curve.py`); the weights of the last epoch (`val: false` in `detect.train.options`: no per-epoch validation; what it cost is measured by `benchmarks/bench_train_breakdown.py`, and where this build's time went is printed below) |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
datasets_dir = "results/pelvis/datasets"
out = "results/pelvis/runs"

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.stages.pelvis import train

runs = train.run(params, datasets_dir=datasets_dir, out=out)

# %% tags=["hide-input"]

from crossmodal.report.detection import runs_summary
from crossmodal.report.table import book_table

display(Markdown(f"Profile **{params['profile']}**, seeds {params['detect']['seeds']}: " + runs_summary(runs)))

# %% [markdown]
# ## The plan of this profile
#
# Detectors, inputs and seeds as `params.yaml` sets them for the profile this book was built
# with (other profiles train other detectors and seeds; see the README's profile table).

# %% tags=["hide-input"]
from crossmodal.report.claims import detector_plan
from crossmodal.report.claims import detector_plan_sentence

display(Markdown(detector_plan_sentence(params)))
display(book_table(detector_plan(params), name=f"tbl-detector-plan-{study}",
                   caption="Which detector trains on which inputs with which seeds in this profile.",
                   stage=f"train_{study}", built_by=detector_plan, params=["detect.detectors", "detect.inputs", "detect.seeds"],
                   data=params_path))

# %% [markdown]
# ## Runs

# %% tags=["hide-input"]
display(book_table(runs.drop(columns=["runs_at_once", "stage_seconds"]), name=f"tbl-runs-{study}",
                   caption="One row per run: detector, input, seed, threads, epochs, the seconds spent training (and "
                           "where they went: waiting for data, steps, validation) and predicting, device and CPU kernels.",
                   stage=f"train_{study}", built_by=train.run, params=["detect.train", "compute.detector_runs"],
                   data=f"{out}/runs.csv", keys=3, max_columns=8))

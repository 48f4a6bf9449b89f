"""Small multiples fit the book's column: panels wrap into rows instead of widening the figure."""

import numpy as np
import pandas as pd
import pytest

from crossmodal.report.common import COLUMN_INCHES
from crossmodal.report.common import grid_shape


@pytest.mark.parametrize(("n", "inches", "expected"), [(1, 3.7, (1, 1)), (2, 3.7, (1, 2)), (3, 3.7, (2, 2)),
                                                        (4, 3.7, (2, 2)), (5, 1.85, (2, 4)), (3, 9.0, (3, 1))])
def test_grid_shape_wraps_within_the_column(n, inches, expected):
    rows, columns = grid_shape(n, panel_inches=inches)
    assert (rows, columns) == expected
    assert rows * columns >= n
    assert columns == 1 or columns * inches <= COLUMN_INCHES


def _curves(detectors: list[str], inputs: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    recall = np.linspace(0, 1, 11)
    pr = pd.DataFrame([{"detector": d, "input": i, "seed": 0, "recall": r, "precision": 1 - 0.5 * r}
                       for d in detectors for i in inputs for r in recall])
    froc = pd.DataFrame([{"detector": d, "input": i, "seed": 0, "fp_per_patient": 8 * r, "sensitivity": r}
                         for d in detectors for i in inputs for r in recall])
    return pr, froc


@pytest.mark.parametrize("n_detectors", [1, 2, 4])
def test_detector_panels_fit_the_column_with_a_legend_each(n_detectors):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal.report.detection import froc_figure
    from crossmodal.report.detection import pr_figure

    detectors = ["yolov8", "yolo11", "yolov5u", "fasterrcnn"][:n_detectors]
    pr, froc = _curves(detectors, ["adaptive_region", "ct_only", "pet_only"])
    for fig in (pr_figure(pr), froc_figure(froc)):
        assert fig.get_figwidth() <= COLUMN_INCHES + 1e-9
        shown = [ax for ax in fig.axes if ax.axison]
        assert [ax.get_title() for ax in shown] == detectors
        assert all(len(ax.get_legend().get_texts()) == 3 for ax in shown)
    plt.close("all")


def test_conspicuity_figure_fits_the_column():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossmodal.report.skeleton.data_card import conspicuity_figure

    regions = pd.DataFrame([{"modality": m, "kind": kind, "evidence": "all", "type": "haemangioma",
                             "conspicuity": float(k), "threshold": 1.0}
                            for m in ("CT", "MR", "PT") for k, kind in enumerate(["metastasis", "mimic"])])
    fig = conspicuity_figure(regions)
    assert fig.get_figwidth() <= COLUMN_INCHES + 1e-9
    assert [ax.get_title() for ax in fig.axes] == ["CT", "MRI", "PET"]
    plt.close("all")

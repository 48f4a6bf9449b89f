"""Reduced-width C3D early-fusion baseline: shapes, training, determinism, CV format."""

import numpy as np
import pandas as pd
import pytest
import torch

from crossmodal.learn.c3d import C3D
from crossmodal.learn.c3d import c3d_cross_validated
from crossmodal.learn.c3d import predict_c3d
from crossmodal.learn.c3d import stack_modalities
from crossmodal.learn.c3d import train_c3d
from crossmodal.learn.classify import OOF_COLUMNS
from crossmodal.learn.classify import cross_validated_scores
from crossmodal.learn.classify import fold_assignments
from crossmodal.learn.metrics import metrics_with_ci


def _volumes(n=12, seed=0, shape=(8, 16, 16)):
    """Noise volumes; positives carry a bright block in channel 2 ("PET")."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    x = rng.normal(0.0, 0.3, size=(n, 3, *shape)).astype(np.float32)
    x[y == 1, 2, 2:6, 4:10, 4:10] += 1.5
    x[::4, 1] = 0.0  # some patients lack MRI
    return x, y


def test_topology_has_eight_convolutions_and_width():
    model = C3D(3, width=4)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 8
    assert all(c.kernel_size == (3, 3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 32, 32, 32, 32]
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) == 8


def test_forward_backward_shapes():
    torch.manual_seed(0)
    model = C3D(3, width=4)
    x = torch.randn(2, 3, 8, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == (2,)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None for p in model.parameters())
    # pool1 keeps depth, later pools halve it
    feats = model.features[:4](x)
    assert feats.shape[2:] == (8, 16, 16)
    # odd and very small inputs still pass all five pools
    assert model(torch.randn(2, 3, 5, 17, 9)).shape == (2,)


def test_stack_modalities():
    ct = np.ones((4, 5, 6))
    pet = 2 * np.ones((4, 5, 6))
    names = ["CT", "MRI", "PET"]
    vol = stack_modalities({"CT": ct, "PET": pet, "MRI": None}, modalities=names)
    assert vol.shape == (3, 4, 5, 6) and vol.dtype == np.float32
    assert vol[0].min() == 1 and vol[1].max() == 0 and vol[2].min() == 2
    with pytest.raises(ValueError):
        stack_modalities({"CT": ct, "PET": np.ones((4, 5, 7))}, modalities=names)
    with pytest.raises(ValueError):
        stack_modalities({}, modalities=names)


def test_training_reduces_loss_gives_probabilities_and_is_deterministic():
    x, y = _volumes()
    state = torch.random.get_rng_state()
    model = train_c3d(
        x, y, np.arange(len(y)), width=4, epochs=8, lr=3e-3, batch_size=6, seed=0, device="cpu"
    )
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    history = model.loss_history
    assert len(history) == 8 and np.all(np.isfinite(history))
    assert np.mean(history[-2:]) < history[0]
    prob = predict_c3d(model, x)
    assert prob.shape == (len(y),) and np.all((prob >= 0) & (prob <= 1))
    again = train_c3d(
        x, y, np.arange(len(y)), width=4, epochs=8, lr=3e-3, batch_size=6, seed=0, device="cpu"
    )
    np.testing.assert_array_equal(prob, predict_c3d(again, x))


def test_cross_validated_output_matches_classifier_format():
    x, y = _volumes(n=12)
    case_ids = [f"p{i:02d}" for i in range(12)]
    folds = fold_assignments(pd.Series(y, index=case_ids), n_splits=3, n_repeats=2, seed=0)
    oof = c3d_cross_validated(x, y, folds, seed=0, width=2, epochs=2, batch_size=4, device="cpu")
    assert tuple(oof.columns) == OOF_COLUMNS
    assert len(oof) == 2 * 12
    assert oof["prob"].between(0, 1).all()
    # same layout as a classifier's OOF table on the same folds
    flat = x.reshape(len(y), -1)[:, :50]
    ref = cross_validated_scores(flat, y, classifier="naive_bayes", folds=folds)
    pd.testing.assert_frame_equal(oof.drop(columns="prob"), ref.drop(columns="prob"))
    table = metrics_with_ci(oof, n_boot=50, seed=0)
    assert {"auc", "accuracy"} <= set(table.index)


def test_folds_trained_side_by_side_give_the_same_probabilities():
    x, y = _volumes(n=12)
    folds = fold_assignments(pd.Series(y, index=[f"p{i:02d}" for i in range(12)]), n_splits=3,
                             n_repeats=1, seed=0)
    kwargs = dict(seed=0, width=2, epochs=2, batch_size=4, device="cpu", threads=1)
    one_by_one = c3d_cross_validated(x, y, folds, jobs=1, **kwargs)
    side_by_side = c3d_cross_validated(x, y, folds, jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one_by_one, side_by_side, check_exact=True)


# ----------------------------------------------------------------------------- sanity gate


def test_joint_histogram_counts_voxels_by_their_channel_values_together():
    from crossmodal.learn.early_fusion import joint_histogram

    x = np.zeros((1, 2, 1, 2, 2))
    x[0, 0] = [[[0.1, 0.9], [0.9, 0.1]]]  # channel 0
    x[0, 1] = [[[0.1, 0.9], [0.1, 1.0]]]  # channel 1 (1.0 falls in the last bin)
    h = 10 ** joint_histogram(x, bins=2)[0] - 1e-6  # back to voxel fractions
    # cells (c0, c1): (low, low), (low, high), (high, low), (high, high)
    np.testing.assert_allclose(h, [0.25, 0.25, 0.25, 0.25], atol=1e-9)
    x[0, 1, 0, 1, 0] = 0.9  # the (high, low) voxel becomes (high, high)
    np.testing.assert_allclose(10 ** joint_histogram(x, bins=2)[0] - 1e-6, [0.25, 0.25, 0.0, 0.5], atol=1e-9)


def _gate_inputs(n=30, signal=True):
    x, y = _volumes(n=n, seed=2)
    if not signal:
        x[:, 2] = np.random.default_rng(5).normal(0.0, 0.3, size=x[:, 2].shape)
    ids = [f"p{i:02d}" for i in range(n)]
    table = pd.DataFrame({"has_PET": 1, "y": y}, index=pd.Index(ids, name="case_id"))
    table.iloc[::10, 0] = 0  # three patients without PET: the gate leaves them out
    x[table["has_PET"].to_numpy() == 0, 2] = 0.0
    folds = fold_assignments(table["y"], n_splits=3, n_repeats=1, seed=0)
    cfg = {"seed": 0, "device": "cpu",
           "train": {"width": 2, "epochs": 30, "lr": 1e-3, "batch_size": 8, "weight_decay": 0.0,
                     "dropout": 0.0, "balance": True, "augment": False},
           "gate": {"modality": "PT", "epochs": 1, "sanity_auc_ci_low": 0.5, "fallback": {"bins": 4, "C": 1.0}}}
    boot = {"n_boot": 200, "seed": 0, "threshold": 0.5, "alpha": 0.05}
    return x, table, folds, cfg, boot


@pytest.mark.parametrize("signal", [True, False])
def test_the_sanity_gate_passes_a_model_that_finds_pet_lesions_and_fails_one_on_noise(signal):
    from crossmodal.stages.skeleton.c3d import early_fusion_gate

    x, table, folds, cfg, boot = _gate_inputs(signal=signal)
    out = early_fusion_gate(x, table, folds, cfg, {"CT": "CT", "MR": "MRI", "PT": "PET"}, boot)
    gate = out["gate"].set_index("model")
    assert list(gate.index) == ["c3d", "early_fusion_histogram"]
    assert (gate["patients"] == 27).all() and gate["task"].str.contains("PET alone").all()
    assert out["sanity_oof"]["case_id"].nunique() == 27  # only patients with PET
    assert bool(gate.loc["early_fusion_histogram", "passed"]) is signal
    assert (gate["passed"] == (gate["ci_low"] > 0.5)).all()
    if not signal:
        assert not gate["passed"].any()  # noise: neither is a comparator


def test_sanity_gate_row_needs_the_lower_bound_strictly_above_the_threshold():
    from crossmodal.learn.early_fusion import sanity_gate

    row = sanity_gate("c3d", {"estimate": 0.7, "ci_low": 0.5, "ci_high": 0.9}, threshold=0.5, task="t",
                      patients=10)
    assert row["passed"] is False and row["auc"] == 0.7
    assert sanity_gate("c3d", {"estimate": 0.7, "ci_low": 0.51, "ci_high": 0.9}, threshold=0.5, task="t",
                       patients=10)["passed"] is True
    assert sanity_gate("c3d", {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan}, threshold=0.5,
                       task="t", patients=10)["passed"] is False

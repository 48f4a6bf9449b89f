"""Fast DeLong: AUC agrees with scikit-learn, variance with the hand-worked definition."""

from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from crossmodal.stats.delong import delong_auc_variance
from crossmodal.stats.delong import delong_covariance
from crossmodal.stats.delong import delong_test
from crossmodal.stats.delong import midrank
from crossmodal.stats.delong import structural_components


def _brute_force(y, scores):
    """DeLong by the O(m n) definition: psi = 1, 1/2, 0 for >, ==, <."""
    y = np.asarray(y)
    scores = np.atleast_2d(scores)
    v10, v01, aucs = [], [], []
    for s in scores:
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    v10, v01 = np.array(v10), np.array(v01)
    m, n = v10.shape[1], v01.shape[1]
    return np.array(aucs), np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


def test_midrank_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=50).astype(float)
    np.testing.assert_array_equal(midrank(x), rankdata(x))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=80)
    y[:2] = [0, 1]
    continuous = rng.normal(size=80) + y
    tied = np.round(continuous * 2) / 2  # heavy ties
    for scores in (continuous, tied):
        auc, var = delong_auc_variance(y, scores)
        assert auc == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
        assert var > 0


def test_hand_worked_three_by_three():
    # positives 0.9, 0.6, 0.4; negatives 0.5, 0.4, 0.1 (one tie at 0.4)
    y = [1, 1, 1, 0, 0, 0]
    s = [0.9, 0.6, 0.4, 0.5, 0.4, 0.1]
    # psi rows = positives, columns = negatives
    psi = [[1, 1, 1], [1, 1, 1], [0, Fraction(1, 2), 1]]
    v10 = [sum(row) / Fraction(3) for row in psi]  # 1, 1, 1/2
    v01 = [sum(psi[i][j] for i in range(3)) / Fraction(3) for j in range(3)]  # 2/3, 5/6, 1

    def var(v):
        mean = sum(v) / len(v)
        return sum((a - mean) ** 2 for a in v) / (len(v) - 1)

    expected_var = var(v10) / 3 + var(v01) / 3
    assert v10 == [1, 1, Fraction(1, 2)]
    assert v01 == [Fraction(2, 3), Fraction(5, 6), 1]
    assert expected_var == Fraction(1, 27)

    auc, comp10, comp01 = structural_components(y, s)
    np.testing.assert_allclose(comp10[0], [float(v) for v in v10])
    np.testing.assert_allclose(comp01[0], [float(v) for v in v01])
    auc, variance = delong_auc_variance(y, s)
    assert auc == pytest.approx(5 / 6)
    assert variance == pytest.approx(float(expected_var), rel=1e-12)


def test_covariance_matches_brute_force():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=60)
    a = np.round(rng.normal(size=60) + y, 1)
    b = np.round(0.5 * a + rng.normal(size=60), 1)
    auc, cov = delong_covariance(y, np.vstack([a, b]))
    auc_ref, cov_ref = _brute_force(y, np.vstack([a, b]))
    np.testing.assert_allclose(auc, auc_ref, atol=1e-12)
    np.testing.assert_allclose(cov, cov_ref, atol=1e-14)


def test_identical_scores_give_p_one():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=40)
    s = rng.normal(size=40) + y
    auc_a, auc_b, z, p = delong_test(y, s, s)
    assert auc_a == auc_b
    assert z == 0.0 and p == 1.0
    # a monotone transform has the same ranks, hence the same ROC curve
    assert delong_test(y, s, np.exp(s))[3] == 1.0


def test_z_and_p_against_brute_force_and_symmetry():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    good = y * 1.5 + rng.normal(size=100)
    weak = y * 0.3 + rng.normal(size=100)
    auc_a, auc_b, z, p = delong_test(y, good, weak)
    aucs, cov = _brute_force(y, np.vstack([good, weak]))
    z_ref = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert z == pytest.approx(z_ref)
    assert auc_a > auc_b and z > 0 and p < 0.01
    _, _, z_swap, p_swap = delong_test(y, weak, good)
    assert z_swap == pytest.approx(-z) and p_swap == pytest.approx(p)


def test_p_value_roughly_uniform_under_null():
    # two independent noise scorers: p < 0.05 in about 5 % of draws
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    ps = [delong_test(y, rng.normal(size=80), rng.normal(size=80))[3] for _ in range(300)]
    assert 0.01 < np.mean(np.array(ps) < 0.05) < 0.11


def test_needs_both_classes():
    with pytest.raises(ValueError):
        delong_auc_variance([1, 1, 1], [0.1, 0.2, 0.3])

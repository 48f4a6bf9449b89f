"""The one patient bootstrap, percentile CI, paired difference and verdict rule of both parts."""

import numpy as np
import pytest

from crossmodal.stats.bootstrap import bootstrap_mean_ci
from crossmodal.stats.bootstrap import bootstrap_p_value
from crossmodal.stats.bootstrap import paired_bootstrap_difference
from crossmodal.stats.bootstrap import patient_resamples
from crossmodal.stats.bootstrap import percentile_ci
from crossmodal.stats.bootstrap import resample_counts
from crossmodal.stats.verdict import overall_verdict
from crossmodal.stats.verdict import verdict


def test_patient_resamples_are_seeded_uniform_draws_with_replacement():
    idx = patient_resamples(7, 2000, seed=3)
    assert idx.shape == (2000, 7) and idx.min() == 0 and idx.max() == 6
    np.testing.assert_array_equal(idx, patient_resamples(7, 2000, seed=3))
    assert not np.array_equal(idx, patient_resamples(7, 2000, seed=4))
    # the exact draws of default_rng(seed).integers: the numbers of earlier runs are kept
    np.testing.assert_array_equal(idx, np.random.default_rng(3).integers(0, 7, size=(2000, 7)))
    # every patient is equally likely
    share = np.bincount(idx.ravel(), minlength=7) / idx.size
    np.testing.assert_allclose(share, 1 / 7, atol=0.01)


def test_resample_counts_count_each_patient_per_row():
    idx = np.array([[0, 0, 2], [1, 2, 2], [2, 1, 0]])
    counts = resample_counts(idx, 3)
    np.testing.assert_array_equal(counts, [[2, 0, 1], [0, 1, 2], [1, 1, 1]])
    assert counts.dtype == float
    big = patient_resamples(5, 50, seed=0)
    np.testing.assert_array_equal(resample_counts(big, 5).sum(axis=1), 5)
    np.testing.assert_array_equal(resample_counts(big, 5)[7], np.bincount(big[7], minlength=5))


def test_percentile_ci_matches_numpy_and_skips_undefined_draws():
    draws = np.random.default_rng(0).normal(size=1001)
    lo, hi = percentile_ci(draws, 0.95)
    assert isinstance(lo, float)
    assert (lo, hi) == tuple(np.quantile(draws, [0.025, 0.975]))
    with_nan = np.r_[draws, np.nan, np.inf]
    assert percentile_ci(with_nan, 0.95) == (lo, hi)
    assert percentile_ci(draws, 0.9) == tuple(np.quantile(draws, [0.05, 0.95]))
    # columns are separate statistics, each with its own undefined draws
    matrix = np.column_stack([draws, np.where(draws > 0, draws, np.nan), np.full(1001, np.nan)])
    lo2, hi2 = percentile_ci(matrix, 0.95)
    assert lo2[0] == lo and hi2[0] == hi
    assert lo2[1] == np.quantile(draws[draws > 0], 0.025)
    assert np.isnan(lo2[2]) and np.isnan(hi2[2])


def test_paired_difference_cancels_the_shared_patient_variation():
    rng = np.random.default_rng(1)
    patient_level = rng.normal(0, 5, size=40)  # large between-patient spread, common to A and B
    a, b = patient_level + 0.3 + rng.normal(0, 0.05, 40), patient_level + rng.normal(0, 0.05, 40)

    def mean_of(values):
        return lambda idx: values.mean() if idx is None else values[idx].mean(axis=1)

    result = paired_bootstrap_difference(mean_of(a), mean_of(b), 40, n_boot=500, seed=2)
    diff, low, high = result[:3]
    assert diff == pytest.approx(a.mean() - b.mean())
    assert low < diff < high and low > 0.2 and high < 0.4  # paired: narrow, clearly above 0
    assert result.a == pytest.approx(a.mean()) and result.b == pytest.approx(b.mean())
    assert result.draws.shape == (500,)
    # unpaired intervals of each mean are two orders wider than the paired one
    _, lo_a, hi_a = bootstrap_mean_ci(a, n_boot=500, seed=2)
    assert hi_a - lo_a > 10 * (high - low)
    # same seed, same draws
    assert paired_bootstrap_difference(mean_of(a), mean_of(b), 40, n_boot=500, seed=2)[:3] == (
        diff, low, high)
    # the result carries the two-sided p-value of its draws: every draw is above 0
    assert result.p_value == bootstrap_p_value(result.draws) == pytest.approx(2 / 501)
    no_effect = paired_bootstrap_difference(mean_of(b), mean_of(b), 40, n_boot=500, seed=2)
    assert no_effect.p_value == 1.0


def test_bootstrap_p_value_is_twice_the_smaller_tail_with_the_plus_one():
    draws = np.r_[np.full(90, 0.5), np.full(10, -0.5)]  # 10 of 100 draws at or below 0
    assert bootstrap_p_value(draws) == pytest.approx(2 * 11 / 101)
    assert bootstrap_p_value(-draws) == pytest.approx(2 * 11 / 101)  # two-sided: symmetric
    assert bootstrap_p_value(draws, null=0.6) == pytest.approx(2 * 1 / 101)  # every draw below 0.6
    assert bootstrap_p_value(np.zeros(50)) == 1.0  # capped at 1
    # undefined draws are left out; none defined gives NaN
    assert bootstrap_p_value(np.r_[draws, np.nan, np.inf]) == bootstrap_p_value(draws)
    assert np.isnan(bootstrap_p_value(np.full(10, np.nan)))
    # per column for (B, k) draws, and consistent with the percentile interval
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.normal(3, 1, 2000), rng.normal(0.5, 1, 2000)])
    p = bootstrap_p_value(matrix)
    assert p.shape == (2,) and p[0] < 0.01 < 0.05 < p[1]
    low, high = percentile_ci(matrix, 0.95)
    np.testing.assert_array_equal(low > 0, p < 0.05)
    # a correct null is rejected at about the nominal rate (uniform p under the null)
    nulls = np.array([bootstrap_p_value(rng.normal(rng.normal(0, 1), 1, 400)) for _ in range(400)])
    assert 0.02 < np.mean(nulls < 0.05) < 0.2


def test_bootstrap_mean_ci():
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    mean, lo, hi = bootstrap_mean_ci(values, n_boot=2000, seed=0)
    assert mean == 2.5 and 1.0 <= lo < 2.5 < hi <= 4.0
    means = values[:4][patient_resamples(4, 2000, 0)].mean(axis=1)
    assert (lo, hi) == tuple(np.quantile(means, [0.025, 0.975]))
    assert all(np.isnan(bootstrap_mean_ci([np.nan])))


def test_verdict_rule():
    assert verdict(0.1, 0.02, 0.2) == "supported"
    assert verdict(-0.1, -0.2, -0.01) == "contradicted"
    assert verdict(0.05, -0.01, 0.1) == "inconclusive"
    assert verdict(float("nan"), 0.0, 1.0) == "not measurable"
    assert verdict(0.1, float("nan"), 1.0) == "not measurable"
    # lower is better (false positives): a CI below 0 supports the claim
    assert verdict(-0.1, -0.2, -0.01, higher_is_better=False) == "supported"
    assert verdict(0.1, 0.02, 0.2, higher_is_better=False) == "contradicted"
    assert verdict(0.0, -0.1, 0.1, higher_is_better=False) == "inconclusive"
    # an interval touching 0 is not evidence
    assert verdict(0.1, 0.0, 0.2) == "inconclusive"


def test_overall_verdict():
    assert overall_verdict(["supported", "supported", "not measurable"]) == "supported"
    assert overall_verdict(["contradicted", "contradicted"]) == "contradicted"
    assert overall_verdict(["supported", "contradicted", "inconclusive"]) == "mixed"
    assert overall_verdict(["supported", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["contradicted", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["not measurable"]) == "not measurable"
    assert overall_verdict([]) == "not measurable"

"""Tests for crossmodal.imaging.fusion: the method registry, each method, and the metrics."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity
from sklearn.metrics import mutual_info_score

from crossmodal.imaging.fusion import FUSION_METHODS
from crossmodal.imaging.fusion import entropy
from crossmodal.imaging.fusion import fuse
from crossmodal.imaging.fusion import fusion_quality
from crossmodal.imaging.fusion import guided_filter
from crossmodal.imaging.fusion import list_methods
from crossmodal.imaging.fusion import method_options
from crossmodal.imaging.fusion import mutual_information
from crossmodal.imaging.fusion import pca_weights
from crossmodal.imaging.fusion import qabf
from crossmodal.imaging.fusion import register_fusion
from crossmodal.imaging.fusion import spatial_frequency
from crossmodal.imaging.fusion import ssim
from crossmodal.imaging.fusion import std_dev
from crossmodal.imaging.fusion import to_gray
from crossmodal.imaging.fusion.methods import adaptive_weight

EXPECTED = {
    "adaptive_region", "concat_ct_pet_ct", "ct_only", "pet_only", "weighted_average", "pca",
    "laplacian_pyramid", "dwt", "guided_filter",
}


def _yx(shape):
    return np.mgrid[: shape[0], : shape[1]]


@pytest.fixture(scope="module")
def pair():
    """Enhanced CT and PET slices in [0, 1], the raw SUV and a body mask (odd shape)."""
    shape = (97, 131)
    y, x = _yx(shape)
    body = ((y - 48) / 40) ** 2 + ((x - 65) / 58) ** 2 <= 1
    rng = np.random.default_rng(0)
    ct = np.where(body, 0.5, 0.0)
    ct[((y - 50) / 12) ** 2 + ((x - 35) / 10) ** 2 <= 1] = 1.0  # bone
    ct[((y - 50) / 12) ** 2 + ((x - 95) / 10) ** 2 <= 1] = 1.0
    ct = np.clip(ct + rng.normal(0, 0.03, shape) * body, 0, 1)
    suv = np.where(body, 1.0, 0.0)
    suv[((y - 30) / 8) ** 2 + ((x - 65) / 12) ** 2 <= 1] = 25.0  # bladder
    suv[((y - 60) / 4) ** 2 + ((x - 70) / 4) ** 2 <= 1] = 7.0  # lesion
    suv = np.maximum(ndi.gaussian_filter(suv, 1.5) + rng.normal(0, 0.05, shape), 0)
    pet = np.clip(suv / 10.0, 0, 1)
    return ct.astype(np.float32), pet.astype(np.float32), suv.astype(np.float32), body


def test_registry_lists_all_methods():
    assert EXPECTED <= set(list_methods())
    assert set(list_methods()) == set(FUSION_METHODS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_method_returns_three_channels_in_unit_range(pair, name):
    ct, pet, suv, body = pair
    out = fuse(name, ct, pet, suv=suv, region=body)
    assert out.shape == ct.shape + (3,)
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    # callable without suv / region as well, and directly through the registry
    plain = FUSION_METHODS[name](ct, pet)
    assert plain.shape == ct.shape + (3,) and plain.min() >= 0 and plain.max() <= 1


@pytest.mark.parametrize("name", ["weighted_average", "laplacian_pyramid", "dwt", "pca",
                                  "guided_filter"])
def test_fusing_an_image_with_itself_returns_it(pair, name):
    ct, _, _, _ = pair
    out = fuse(name, ct, ct)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], ct, atol=1e-5)


def test_single_modality_and_concatenation_channels(pair):
    ct, pet, _, _ = pair
    np.testing.assert_array_equal(fuse("ct_only", ct, pet), np.dstack([ct] * 3))
    np.testing.assert_array_equal(fuse("pet_only", ct, pet), np.dstack([pet] * 3))
    np.testing.assert_array_equal(fuse("concat_ct_pet_ct", ct, pet), np.dstack([ct, pet, ct]))
    np.testing.assert_allclose(fuse("weighted_average", ct, pet)[..., 0], 0.5 * (ct + pet),
                               atol=1e-6)


def test_adaptive_region_blends_by_uptake(pair):
    ct, pet, suv, body = pair
    out = fuse("adaptive_region", ct, pet, suv=suv, region=body, slope=2.0)
    np.testing.assert_array_equal(out[..., 0], ct)
    np.testing.assert_array_equal(out[..., 1], pet)
    w, t = adaptive_weight(suv, body, slope=2.0)
    assert t == pytest.approx(threshold_otsu(np.minimum(suv[body], 10.0)))
    np.testing.assert_allclose(out[..., 2], w * pet + (1 - w) * ct, atol=1e-6)
    assert 1.0 < t < 7.0  # between background tissue and the lesion
    assert w[60, 70] > 0.5  # lesion (peak SUV about 7) mostly takes the PET value
    assert w[30, 65] == 1.0  # bladder
    assert w[75, 65] == 0.0  # background tissue keeps the CT value
    assert (w[~body] == 0).all()  # nothing outside the region
    # an explicit threshold and a box region are accepted
    w2, t2 = adaptive_weight(suv, (0, 97, 0, 72), threshold=3.0, slope=1.0)
    assert t2 == 3.0 and (w2[:, 72:] == 0).all() and w2[60, 70] == 1.0
    with pytest.raises(ValueError):
        adaptive_weight(suv, body, slope=0.0)


def test_adaptive_region_without_suv_or_region(pair):
    ct, pet, _, _ = pair
    out = fuse("adaptive_region", ct, pet)
    assert out.shape == ct.shape + (3,)
    assert out[60, 70, 2] == pytest.approx(pet[60, 70], abs=0.05)  # lesion still from PET
    flat = fuse("adaptive_region", ct, np.zeros_like(pet))  # no uptake anywhere
    np.testing.assert_allclose(flat[..., 2], ct, atol=1e-6)


def test_pca_weights_sum_to_one(pair):
    ct, pet, _, _ = pair
    wa, wb = pca_weights(ct, pet)
    assert wa + wb == pytest.approx(1.0)
    assert 0 <= wa <= 1 and 0 <= wb <= 1
    # the component with all the variance takes all the weight
    wa, wb = pca_weights(ct, np.full_like(ct, 0.3))
    assert wa == pytest.approx(1.0) and wb == pytest.approx(0.0)
    assert pca_weights(np.zeros((4, 4)), np.ones((4, 4))) == (0.5, 0.5)


def test_register_fusion_and_unknown_name(pair):
    ct, pet, _, _ = pair

    @register_fusion("_test_max")
    def _max(ct01, pet01, *, suv=None, region=None, **_):
        return np.dstack([np.maximum(ct01, pet01)] * 3)

    try:
        assert "_test_max" in list_methods()
        assert method_options("_test_max") is None  # takes any keyword: nothing to check
        np.testing.assert_allclose(fuse("_test_max", ct, pet)[..., 0], np.maximum(ct, pet))
        with pytest.raises(ValueError):
            register_fusion("_test_max")(lambda a, b, **k: a)
    finally:
        FUSION_METHODS.pop("_test_max")
    with pytest.raises(KeyError, match="unknown fusion method"):
        fuse("nope", ct, pet)
    with pytest.raises(ValueError):
        fuse("ct_only", ct, pet[:-1])


def test_unknown_option_names_the_option_and_the_method(pair):
    ct, pet, suv, body = pair
    with pytest.raises(TypeError, match=r"fusion method 'guided_filter' has no option 'r11'"):
        fuse("guided_filter", ct, pet, r11=45)
    with pytest.raises(TypeError, match=r"'adaptive_region' has no option 'suvmax'.*slope"):
        fuse("adaptive_region", ct, pet, suv=suv, region=body, suvmax=10.0)
    with pytest.raises(TypeError, match=r"'ct_only' has no option 'weight'; its options: none"):
        fuse("ct_only", ct, pet, weight=0.5)
    # direct calls through the registry reject it too (no catch-all keyword)
    with pytest.raises(TypeError):
        FUSION_METHODS["dwt"](ct, pet, level=2)
    # a known option still changes the result
    assert not np.allclose(fuse("weighted_average", ct, pet, weight=0.2),
                           fuse("weighted_average", ct, pet))


def test_method_options_lists_each_methods_keywords():
    assert method_options("weighted_average") == ("weight",)
    assert method_options("dwt") == ("wavelet", "levels")
    assert set(method_options("adaptive_region")) == {"slope", "threshold", "suv_max"}
    assert method_options("pca") == ()
    for name in list_methods():  # suv and region are inputs, never options
        assert not {"suv", "region"} & set(method_options(name))
    with pytest.raises(KeyError, match="unknown fusion method"):
        method_options("nope")


def test_guided_filter_properties():
    rng = np.random.default_rng(0)
    img = rng.random((40, 50))
    # with tiny eps, filtering an image guided by itself keeps it
    np.testing.assert_allclose(guided_filter(img, img, radius=3, eps=1e-8), img, atol=1e-4)
    # a constant input stays constant
    np.testing.assert_allclose(guided_filter(img, np.full_like(img, 0.7), radius=5, eps=0.1), 0.7)
    # large eps tends to the box mean: smoother than the input
    smooth = guided_filter(img, img, radius=5, eps=10.0)
    assert smooth.std() < 0.5 * img.std()


def test_laplacian_and_dwt_keep_strongest_details(pair):
    ct, pet, _, _ = pair
    for name in ("laplacian_pyramid", "dwt"):
        out = fuse(name, ct, pet)[..., 0]
        # the fused image keeps the sharp CT bone edge better than the plain average
        assert spatial_frequency(out) > spatial_frequency(0.5 * (ct + pet))


# --------------------------------------------------------------------------- metrics


def test_to_gray_is_channel_mean():
    rgb = np.random.default_rng(0).random((5, 6, 3))
    np.testing.assert_allclose(to_gray(rgb), rgb.mean(axis=-1))
    g = np.ones((5, 6))
    assert to_gray(g) is not None and np.array_equal(to_gray(g), g)


def test_entropy_sd_sf_known_values():
    levels = (np.arange(256) + 0.5) / 256  # one pixel per bin
    assert entropy(levels.reshape(16, 16)) == pytest.approx(8.0)
    assert entropy(np.full((8, 8), 0.4)) == pytest.approx(0.0)
    img = np.random.default_rng(0).random((30, 40))
    assert std_dev(img) == pytest.approx(img.std())
    assert spatial_frequency(np.full((8, 8), 0.3)) == 0.0
    stripes = np.tile([0.0, 1.0], (10, 5))  # (10, 10) vertical stripes
    # RF^2 = 9*10 / 100, CF^2 = 0
    assert spatial_frequency(stripes) == pytest.approx(np.sqrt(0.9))


def test_ssim_matches_skimage(pair):
    ct, pet, _, _ = pair
    f = 0.5 * (ct + pet)
    expected = structural_similarity(ct.astype(np.float64), f.astype(np.float64), data_range=1.0)
    assert ssim(ct, f) == pytest.approx(expected, rel=1e-6)
    assert ssim(ct, ct) == pytest.approx(1.0)


def test_mutual_information_matches_sklearn(pair):
    ct, pet, _, _ = pair
    f = 0.5 * (ct + pet)
    for bins in (256, 32):
        la = np.minimum((ct * bins).astype(int), bins - 1).ravel()
        lf = np.minimum((f * bins).astype(int), bins - 1).ravel()
        expected = mutual_info_score(la, lf) / np.log(2)
        assert mutual_information(ct, f, bins=bins) == pytest.approx(expected, rel=1e-9)
    # I(A; A) = H(A)
    assert mutual_information(ct, ct) == pytest.approx(entropy(ct), rel=1e-9)


def test_qabf_behaviour(pair):
    ct, pet, _, _ = pair
    q_self = qabf(ct, pet, ct)
    q_const = qabf(ct, pet, np.full_like(ct, 0.5))
    assert q_self > 0.5
    assert q_const < 0.1
    assert q_self > q_const
    q_avg = qabf(ct, pet, 0.5 * (ct + pet))
    assert 0 <= q_avg <= 1
    # with A = B = F every edge is perfectly kept: the sigmoid ceilings Γg·Γα
    assert qabf(ct, ct, ct) == pytest.approx(0.9994 / (1 + np.exp(-15 * 0.5))
                                             * 0.9879 / (1 + np.exp(-22 * 0.2)), rel=1e-6)
    assert qabf(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8))) == 0.0


def test_fusion_quality_reports_all_metrics(pair):
    ct, pet, suv, body = pair
    fused = fuse("adaptive_region", ct, pet, suv=suv, region=body)
    q = fusion_quality(ct, pet, fused)
    assert set(q) == {"EN", "SD", "SF", "MI_CT", "MI_PET", "SSIM_CT", "SSIM_PET", "QABF"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in q.values())
    gray = to_gray(fused)
    assert q["EN"] == pytest.approx(entropy(gray))
    assert q["MI_PET"] == pytest.approx(mutual_information(pet, gray))

"""Tests for crossmodal.imaging.preprocess on synthetic CT/PET slices."""

import numpy as np
import pytest
import SimpleITK as sitk

from crossmodal.imaging.preprocess import LetterboxInfo
from crossmodal.imaging.preprocess import body_mask_ct
from crossmodal.imaging.preprocess import body_mask_pet
from crossmodal.imaging.preprocess import clahe
from crossmodal.imaging.preprocess import clip_suv
from crossmodal.imaging.preprocess import crop
from crossmodal.imaging.preprocess import edges
from crossmodal.imaging.preprocess import enhance_ct
from crossmodal.imaging.preprocess import enhance_pet
from crossmodal.imaging.preprocess import letterbox
from crossmodal.imaging.preprocess import region_box
from crossmodal.imaging.preprocess import region_box_volume
from crossmodal.imaging.preprocess import unletterbox
from crossmodal.imaging.preprocess import window_ct

H, W = 120, 160


def _ellipse(cy, cx, ry, rx, shape=(H, W)):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


@pytest.fixture()
def slices():
    """A CT slice (HU) with body, gas pocket and couch, and a matching PET slice (SUV)."""
    rng = np.random.default_rng(0)
    body = _ellipse(55, 80, 40, 60)
    hu = np.full((H, W), -1000.0)
    hu[body] = 40.0
    gas = _ellipse(60, 80, 6, 6)
    hu[gas] = -950.0  # a hole inside the body
    hu[108:112, 10:150] = 300.0  # couch, separated from the body by air
    hu += rng.normal(0, 15, hu.shape)
    suv = np.zeros((H, W))
    pet_body = _ellipse(57, 82, 38, 58)  # PET outline slightly off the CT one
    suv[pet_body] = 1.0
    suv[_ellipse(45, 80, 10, 14)] = 40.0  # a hot bladder
    suv = np.maximum(suv + rng.normal(0, 0.1, suv.shape) * np.sqrt(suv + 0.05), 0)
    return hu.astype(np.float32), suv.astype(np.float32), body, pet_body


def test_window_ct_maps_window_to_unit_range():
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0], dtype=np.float32)
    out = window_ct(hu)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(window_ct(np.array([0.0]), window=(-1000, 1000)), [0.5])
    with pytest.raises(ValueError):
        window_ct(hu, window=(40, 40))


def test_window_ct_and_clip_suv_accept_sitk_images():
    img = sitk.GetImageFromArray(np.linspace(-500, 500, 24, dtype=np.float32).reshape(2, 3, 4))
    img.SetSpacing((0.7, 0.8, 2.0))
    img.SetOrigin((1.0, 2.0, 3.0))
    out = window_ct(img)
    assert isinstance(out, sitk.Image)
    assert out.GetSpacing() == img.GetSpacing() and out.GetOrigin() == img.GetOrigin()
    arr = sitk.GetArrayFromImage(out)
    assert arr.min() >= 0 and arr.max() <= 1
    assert isinstance(clip_suv(img), sitk.Image)


def test_clip_suv_range():
    suv = np.array([-0.5, 0.0, 2.5, 10.0, 35.0])
    np.testing.assert_allclose(clip_suv(suv), [0.0, 0.0, 0.25, 1.0, 1.0])
    np.testing.assert_allclose(clip_suv(suv, suv_max=5.0), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert clip_suv(suv).dtype == np.float32


def test_clahe_and_enhance_wrappers(slices):
    hu, suv, _, _ = slices
    ct01 = enhance_ct(hu)
    np.testing.assert_array_equal(ct01, window_ct(hu))
    eq = enhance_ct(hu, use_clahe=True)
    assert eq.shape == hu.shape and eq.dtype == np.float32
    assert eq.min() >= 0 and eq.max() <= 1
    assert not np.allclose(eq, ct01)
    pet01 = enhance_pet(suv, use_clahe=True, clip_limit=0.02, kernel_size=16)
    assert pet01.min() >= 0 and pet01.max() <= 1
    flat = clahe(np.full((16, 16), 0.3))
    np.testing.assert_allclose(flat, 0.3)
    vol = clahe(np.random.default_rng(0).random((8, 32, 32)))
    assert vol.shape == (8, 32, 32)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_body_mask_ct_drops_couch_and_fills_holes(slices):
    hu, _, body, _ = slices
    mask = body_mask_ct(hu)
    assert mask.dtype == bool
    assert _iou(mask, body) > 0.97
    assert mask[60, 80]  # the gas pocket is filled
    assert not mask[110, 20:140].any()  # the couch is gone


def test_body_mask_ct_volume():
    vol = np.full((5, H, W), -1000.0)
    vol[:, _ellipse(55, 80, 40, 60)] = 0.0
    vol[:, 55, 80] = -1000.0
    mask = body_mask_ct(vol)
    assert mask.shape == vol.shape and mask[:, 55, 80].all()


def test_body_mask_pet_ignores_hot_bladder(slices):
    _, suv, _, pet_body = slices
    mask = body_mask_pet(suv)
    # Otsu on linear SUV would split tissue from bladder; the mask must be the body
    assert _iou(mask, pet_body) > 0.9


def test_body_mask_pet_empty_and_flat_slices():
    assert not body_mask_pet(np.zeros((32, 32))).any()
    assert not body_mask_pet(np.full((32, 32), 0.01)).any()
    assert body_mask_pet(np.zeros((32, 32))).shape == (32, 32)
    assert not body_mask_pet(np.zeros((3, 16, 16))).any()


def test_edges_on_body_outline(slices):
    hu, _, body, _ = slices
    e = edges(window_ct(hu))
    assert e.dtype == bool and e.any()
    # edges lie near the outline or the gas pocket, not in the uniform interior
    inner = _ellipse(55, 80, 30, 50) & ~_ellipse(60, 80, 10, 10)
    assert not e[inner].any()
    assert edges(np.stack([window_ct(hu)] * 2)).shape == (2, H, W)


def test_region_box_contains_both_masks(slices):
    hu, suv, _, _ = slices
    ct_mask, pet_mask = body_mask_ct(hu), body_mask_pet(suv)
    y0, y1, x0, x1 = region_box(ct_mask, pet_mask, margin=8)
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    assert not (ct_mask & ~inside).any() and not (pet_mask & ~inside).any()
    ys, xs = np.nonzero(ct_mask | pet_mask)
    assert (y0, x0) == (max(0, ys.min() - 8), max(0, xs.min() - 8))
    assert (y1, x1) == (min(H, ys.max() + 1 + 8), min(W, xs.max() + 1 + 8))
    # clipped to the image
    assert region_box(np.ones((10, 10), bool), None, margin=8) == (0, 10, 0, 10)
    # nothing found: keep the whole slice
    assert region_box(np.zeros((10, 12), bool), np.zeros((10, 12), bool)) == (0, 10, 0, 12)


def test_region_box_volume_is_union_over_slices():
    ct = np.zeros((3, 50, 60), bool)
    pet = np.zeros((3, 50, 60), bool)
    ct[0, 10:20, 10:20] = True
    pet[2, 30:40, 40:45] = True
    assert region_box_volume(ct, pet, margin=2) == (8, 42, 8, 47)
    assert region_box_volume(ct, None, margin=0) == (10, 20, 10, 20)


def test_crop_shapes():
    img = np.arange(20 * 30).reshape(20, 30)
    box = (2, 12, 5, 25)
    assert crop(img, box).shape == (10, 20)
    assert crop(np.zeros((4, 20, 30)), box).shape == (4, 10, 20)
    assert crop(np.zeros((20, 30, 3)), box, channel_axis=-1).shape == (10, 20, 3)
    assert crop(img, box)[0, 0] == img[2, 5]


@pytest.mark.parametrize("shape", [(100, 60), (60, 100), (37, 251), (256, 256)])
def test_letterbox_keeps_aspect_and_round_trips_boxes(shape):
    rng = np.random.default_rng(1)
    img = rng.random(shape).astype(np.float32)
    out, info = letterbox(img, size=128, pad_value=-1.0)
    assert out.shape == (128, 128) and out.dtype == np.float32
    assert isinstance(info, LetterboxInfo)
    assert max(info.resized_shape) == 128
    assert abs(info.scale_x - info.scale_y) < 0.05 * max(info.scale_x, info.scale_y)
    y0, y1, x0, x1 = info.content_box
    assert (out[:y0] == -1).all() and (out[y1:] == -1).all()
    assert (out[:, :x0] == -1).all() and (out[:, x1:] == -1).all()

    h, w = shape
    xa, xb = np.sort(rng.uniform(0, w, (2, 20)), axis=0)
    ya, yb = np.sort(rng.uniform(0, h, (2, 20)), axis=0)
    boxes = np.column_stack([xa, ya, xb, yb])
    fwd = info.boxes_to_letterbox(boxes)
    assert (fwd >= -1e-9).all() and (fwd <= 128 + 1e-9).all()
    back = info.boxes_from_letterbox(fwd)
    np.testing.assert_allclose(back, boxes, atol=1.0)
    # pixel-level: after rounding to integer pixels the round trip is still within 1 px
    np.testing.assert_allclose(info.boxes_from_letterbox(np.round(fwd)), boxes,
                               atol=1.0 / min(info.scale_x, info.scale_y))


def test_letterbox_box_content_follows_mapping():
    img = np.zeros((90, 150), np.float32)
    img[30:50, 40:100] = 1.0  # rows 30-49, cols 40-99
    out, info = letterbox(img, size=(120, 120), order=0)
    x0, y0, x1, y1 = info.boxes_to_letterbox([[40, 30, 100, 50]])[0]
    ys, xs = np.nonzero(out > 0.5)
    assert abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1
    assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1


def test_letterbox_with_crop_box_maps_to_original_slice():
    img = np.random.default_rng(2).random((100, 140))
    box = (10, 90, 20, 130)
    out, info = letterbox(img, size=64, box=box)
    direct, _ = letterbox(crop(img, box), size=64)
    np.testing.assert_array_equal(out, direct)
    pts = np.array([[20.0, 10.0], [130.0, 90.0], [75.0, 50.0]])  # (x, y) in the slice
    lb = info.points_to_letterbox(pts)
    np.testing.assert_allclose(lb[0], [info.pad_x, info.pad_y])
    np.testing.assert_allclose(info.points_from_letterbox(lb), pts, atol=1e-9)


def test_letterbox_multichannel_bool_and_unletterbox():
    rgb = np.random.default_rng(3).random((50, 80, 3)).astype(np.float32)
    out, info = letterbox(rgb, size=64)
    assert out.shape == (64, 64, 3)
    mask = np.zeros((50, 80), bool)
    mask[10:20, 30:60] = True
    mout, minfo = letterbox(mask, size=64, order=0)
    assert mout.dtype == bool and mout.any()
    back = unletterbox(mout, minfo, order=0)
    assert back.shape == mask.shape
    assert _iou(back, mask) > 0.8
    with pytest.raises(ValueError):
        letterbox(np.zeros((0, 5)), size=8)

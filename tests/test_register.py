"""Tests for crossmodal.imaging.register on a small synthetic pelvic PET/CT pair."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from crossmodal.imaging.register import RegistrationResult
from crossmodal.imaging.register import mask_points_mm
from crossmodal.imaging.register import register_rigid
from crossmodal.report.align_fuse import registration_figure
from crossmodal.imaging.register import transform_error_mm
from crossmodal.io.geometry import resample_to_reference

CT_SPACING = 3.0
PET_SPACING = 4.0
CT_SIZE = (64, 64, 48)  # x, y, z


def _grid(size, spacing):
    axes = [(np.arange(n) - (n - 1) / 2) * spacing for n in size]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return x, y, z


def _scene(x, y, z):
    """HU, activity (SUV) and body mask of an analytic pelvis at physical points (mm)."""

    def ell(cx, cy, cz, rx, ry, rz):
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1

    hu = np.full(x.shape, -1000.0, np.float32)
    act = np.zeros(x.shape, np.float32)
    body = (x / 80) ** 2 + (y / 55) ** 2 <= 1  # a cylinder along z: fat
    hu[body], act[body] = -100, 0.4
    inner = (x / 65) ** 2 + (y / 42) ** 2 <= 1  # muscle and organs
    hu[inner], act[inner] = 40, 1.0
    hu[(y > 70) & (y < 76) & (np.abs(x) < 90)] = 200  # couch: CT only
    for bone in [(-50, 0, 0, 14, 16, 30), (50, 0, 0, 14, 16, 30), (0, 33, 5, 18, 8, 40)]:
        m = ell(*bone)
        hu[m], act[m] = 700, 0.6
    m = ell(0, -18, 20, 22, 16, 18)  # bladder: water on CT, very hot on PET
    hu[m], act[m] = 10, 25.0
    m = ell(0, 24, -12, 7, 6, 10)  # rectal gas
    hu[m], act[m] = -900, 0.0
    m = ell(12, 0, -5, 8, 7, 9)  # tumour, near-isodense on CT
    hu[m], act[m] = 45, 8.0
    act[ell(-35, 12, -22, 5, 5, 5)] = 5.0  # node, PET only
    return hu, act, body


def _make_pair(shift, angles_deg, seed=0):
    """CT on a 3 mm grid; PET (PSF blur, 4 mm grid, noise) misregistered by ``truth``.

    ``truth`` maps CT points to PET points: PET(q) = activity(truth^-1(q)).
    """
    rng = np.random.default_rng(seed)
    hu, _, body = _scene(*_grid(CT_SIZE, CT_SPACING))
    hu = hu + rng.normal(0, 10, hu.shape).astype(np.float32)
    origin = tuple(-(n - 1) / 2 * CT_SPACING for n in CT_SIZE)
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((CT_SPACING,) * 3)
    ct.SetOrigin(origin)
    body_img = sitk.GetImageFromArray(body.astype(np.uint8))
    body_img.CopyInformation(ct)

    # activity on a 2 mm world grid larger than both fields of view, so that neither
    # image is truncated where the other is not
    world_size, world_spacing = (100, 100, 100), 2.0
    _, act, _ = _scene(*_grid(world_size, world_spacing))
    act = ndi.gaussian_filter(act, 6.0 / 2.355 / world_spacing)  # FWHM 6 mm PSF
    world = sitk.GetImageFromArray(act.astype(np.float32))
    world.SetSpacing((world_spacing,) * 3)
    world.SetOrigin(tuple(-(n - 1) / 2 * world_spacing for n in world_size))

    truth = sitk.Euler3DTransform()
    truth.SetCenter((0.0, 0.0, 0.0))
    truth.SetRotation(*np.deg2rad(angles_deg))
    truth.SetTranslation(tuple(float(s) for s in shift))
    pet_size = [int(np.ceil(n * CT_SPACING / PET_SPACING)) + 4 for n in CT_SIZE]
    pet_origin = [-(n - 1) / 2 * PET_SPACING + 1.3 for n in pet_size]  # grids not nested
    pet = sitk.Resample(world, pet_size, truth.GetInverse(), sitk.sitkLinear, pet_origin,
                        (PET_SPACING,) * 3, (1, 0, 0, 0, 1, 0, 0, 0, 1), 0.0, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(pet)
    arr = arr + rng.normal(0, 1, arr.shape) * 0.15 * np.sqrt(np.maximum(arr, 0) + 0.01)
    noisy = sitk.GetImageFromArray(np.maximum(arr, 0).astype(np.float32))
    noisy.CopyInformation(pet)
    return ct, noisy, truth, body_img


@pytest.fixture(scope="module")
def pair():
    return _make_pair(shift=(6.0, -4.0, 3.0), angles_deg=(2.0, 0.0, 1.0), seed=0)


@pytest.fixture(scope="module")
def rigid_result(pair):
    ct, pet, _, _ = pair
    return register_rigid(ct, pet)


def _same_grid(a, b):
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetOrigin(), b.GetOrigin())
            and np.allclose(a.GetSpacing(), b.GetSpacing())
            and np.allclose(a.GetDirection(), b.GetDirection()))


def test_resample_to_reference_uses_reference_grid(pair):
    ct, pet, _, _ = pair
    out = resample_to_reference(pet, ct)
    assert _same_grid(out, ct)
    assert out.GetPixelID() == pet.GetPixelID()
    # resampling an image onto its own grid is the identity
    same = resample_to_reference(pet, pet)
    np.testing.assert_allclose(sitk.GetArrayFromImage(same), sitk.GetArrayFromImage(pet),
                               atol=1e-5)


def test_resample_to_reference_applies_transform():
    img = sitk.GetImageFromArray(np.arange(10 * 10 * 10, dtype=np.float32).reshape(10, 10, 10))
    shift = sitk.TranslationTransform(3, (1.0, 0.0, 0.0))  # output x samples input x + 1
    out = sitk.GetArrayFromImage(resample_to_reference(img, img, transform=shift,
                                                       interpolator="nearest", default_value=-1))
    src = sitk.GetArrayFromImage(img)
    np.testing.assert_array_equal(out[..., :-1], src[..., 1:])
    assert (out[..., -1] == -1).all()


def test_register_rigid_recovers_known_misregistration(pair, rigid_result):
    ct, pet, truth, body = pair
    points = mask_points_mm(body)
    before = transform_error_mm(sitk.Transform(3, sitk.sitkIdentity), truth, points)
    after = transform_error_mm(rigid_result.transform, truth, points)
    assert before.mean() > 6.0  # the misregistration is real
    assert after.mean() < PET_SPACING  # the spec's target: within one PET voxel
    assert after.max() < PET_SPACING
    assert isinstance(rigid_result, RegistrationResult)
    assert rigid_result.transform.GetName() == "Euler3DTransform"
    assert rigid_result.iterations > 0
    assert np.isfinite(rigid_result.metric_value) and rigid_result.metric_value < 0
    assert len(rigid_result.metric_history) > 0


def test_registration_result_apply_puts_pet_on_ct_grid(pair, rigid_result):
    ct, pet, truth, body = pair
    after = rigid_result.apply(pet)
    before = resample_to_reference(pet, ct)
    ideal = resample_to_reference(pet, ct, transform=truth)
    assert _same_grid(after, ct)

    def rms(a, b):
        return float(np.sqrt(np.mean((sitk.GetArrayFromImage(a) - sitk.GetArrayFromImage(b)) ** 2)))

    assert rms(after, ideal) < 0.5 * rms(before, ideal)
    params = rigid_result.parameters()
    assert params["kind"] == "rigid" and len(params["transform_parameters"]) == 6


def test_register_rigid_leaves_inputs_alone_and_is_seeded(pair, rigid_result):
    ct, pet, _, _ = pair
    ct_copy, pet_copy = sitk.Image(ct), sitk.Image(pet)
    default_threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    again = register_rigid(ct, pet, seed=0)
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == default_threads
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(ct_copy))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(pet), sitk.GetArrayFromImage(pet_copy))
    assert _same_grid(ct, ct_copy) and _same_grid(pet, pet_copy)
    np.testing.assert_array_equal(again.transform.GetParameters(),
                                  rigid_result.transform.GetParameters())


def test_register_affine_stays_within_a_pet_voxel(pair):
    ct, pet, truth, body = pair
    result = register_rigid(ct, pet, kind="affine", iterations=100)
    assert result.transform.GetName() == "AffineTransform"
    err = transform_error_mm(result.transform, truth, mask_points_mm(body))
    assert err.mean() < PET_SPACING


def test_register_rigid_rejects_bad_options(pair):
    ct, pet, _, _ = pair
    with pytest.raises(ValueError):
        register_rigid(ct, pet, kind="bspline")
    with pytest.raises(ValueError):
        register_rigid(ct, pet, shrink_factors=(2, 1), smoothing_sigmas=(1,))
    with pytest.raises(ValueError):
        register_rigid(ct, pet, metric="nope", iterations=1)


def test_transform_error_mm_known_values():
    rng = np.random.default_rng(0)
    points = rng.uniform(-100, 100, size=(200, 3))
    ident = sitk.Transform(3, sitk.sitkIdentity)
    shift = sitk.TranslationTransform(3, (3.0, 4.0, 0.0))
    np.testing.assert_allclose(transform_error_mm(shift, ident, points), 5.0)
    rot = sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.0, 0.0, np.deg2rad(2.0), (1.0, 0.0, 0.0))
    loop = [np.linalg.norm(np.subtract(rot.TransformPoint(p.tolist()), p)) for p in points]
    np.testing.assert_allclose(transform_error_mm(rot, ident, points), loop, rtol=1e-9)
    # a non-affine transform takes the point-by-point path
    field = sitk.Image([8, 8, 8], sitk.sitkVectorFloat64, 3)
    field.SetOrigin((-120.0,) * 3)
    field.SetSpacing((40.0,) * 3)
    disp = sitk.DisplacementFieldTransform(sitk.Image(field))
    err = transform_error_mm(disp, shift, points[:10])
    np.testing.assert_allclose(err, 5.0)
    assert transform_error_mm(shift, ident, np.zeros((0, 3))).shape == (0,)


def test_mask_points_mm_matches_sitk_geometry():
    arr = np.zeros((5, 6, 7), np.uint8)
    arr[1, 2, 3] = arr[4, 5, 6] = arr[0, 0, 0] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.SetSpacing((0.8, 1.5, 2.5))
    mask.SetOrigin((10.0, -20.0, 5.0))
    rot = sitk.VersorTransform((0.0, 0.0, 1.0), 0.3).GetMatrix()
    mask.SetDirection(rot)
    pts = mask_points_mm(mask)
    expected = [mask.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
                for k, j, i in np.argwhere(arr)]
    np.testing.assert_allclose(pts, expected, atol=1e-9)
    sub = mask_points_mm(mask, max_points=2, seed=1)
    assert sub.shape == (2, 3)
    np.testing.assert_array_equal(sub, mask_points_mm(mask, max_points=2, seed=1))


def test_registration_figure(pair, rigid_result):
    from matplotlib.figure import Figure

    ct, pet, _, _ = pair
    fig = registration_figure(ct, pet, rigid_result.apply(pet), z=20)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert "before" in fig.axes[0].get_title() and "after" in fig.axes[3].get_title()


def test_fov_margin_mask_drops_axial_ends():
    from crossmodal.imaging.register import _metric_mask

    ct = sitk.Image([8, 8, 20], sitk.sitkFloat32)
    ct.SetSpacing((2.0, 2.0, 3.0))
    ct.SetOrigin((0.0, 0.0, 0.0))  # slices at z = 0, 3, ..., 57
    pet = sitk.Image([4, 4, 10], sitk.sitkFloat32)
    pet.SetSpacing((4.0, 4.0, 4.0))
    pet.SetOrigin((0.0, 0.0, 10.0))  # PET covers z = 10 ... 46
    mask = sitk.GetArrayFromImage(_metric_mask(ct, pet, 8.0, None)).astype(bool)
    kept = np.flatnonzero(mask.any(axis=(1, 2))) * 3.0
    assert kept.min() >= 18.0 and kept.max() <= 38.0  # 8 mm inside the PET's 10..46 mm
    assert mask[kept.astype(int) // 3].all()
    assert _metric_mask(ct, pet, None, None) is None
    user = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
    user.CopyInformation(ct)
    assert not sitk.GetArrayFromImage(_metric_mask(ct, pet, 8.0, user)).any()


def _default_register_params():
    from crossmodal.params import load_params

    return load_params("params.yaml")["align_fuse"]["register"]


def test_default_params_recover_misregistration_and_rerun_identically():
    """The params.yaml default (engine and all) on a small phantom pair: within a
    millimetre of a known 6 mm + 2 degree misregistration, bit-identical on rerun."""
    cfg = _default_register_params()
    ct, pet, truth, body = _make_pair(shift=(-5.0, 4.0, -4.0), angles_deg=(-1.0, 0.5, -1.5), seed=1)
    points = mask_points_mm(body)
    first = register_rigid(ct, pet, **cfg)
    again = register_rigid(ct, pet, **cfg)
    before = transform_error_mm(sitk.Transform(3, sitk.sitkIdentity), truth, points)
    after = transform_error_mm(first.transform, truth, points)
    assert before.mean() > 5.0
    assert after.mean() < 1.0 and after.max() < 2.0
    assert first.transform.GetName() == "Euler3DTransform"
    assert np.isfinite(first.metric_value) and first.metric_value < 0
    np.testing.assert_array_equal(again.transform.GetParameters(), first.transform.GetParameters())
    np.testing.assert_array_equal(again.transform.GetFixedParameters(),
                                  first.transform.GetFixedParameters())


def test_elastix_engine_matches_sitk_convention(pair, rigid_result):
    """Both engines return CT->PET transforms in one convention: on the same pair they
    agree to well under a PET voxel, and the elastix affine map is converted too."""
    ct, pet, truth, body = pair
    points = mask_points_mm(body)
    rigid = register_rigid(ct, pet, engine="elastix", fov_margin_mm=None)
    assert transform_error_mm(rigid.transform, truth, points).mean() < 1.0
    assert transform_error_mm(rigid.transform, rigid_result.transform, points).mean() < 1.0
    assert rigid.parameters()["transform_name"] == "Euler3DTransform"
    affine = register_rigid(ct, pet, engine="elastix", kind="affine")
    assert affine.transform.GetName() == "AffineTransform"
    assert transform_error_mm(affine.transform, truth, points).mean() < PET_SPACING
    with pytest.raises(ValueError):
        register_rigid(ct, pet, engine="ants")

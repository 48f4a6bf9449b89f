"""Modality-specific evidence of the skeletal phantom's metastases (issue #12, item 3).

By default every metastasis is abnormal on CT, dark on T1 and hot on PET. Real bone
metastases are not: some are missed by one or two modalities. After
:func:`~crossmodal.phantom.skeleton_anatomy.sample_skeletal_anatomy` has drawn a patient's
metastases, :func:`apply_evidence` turns some of them into

=================  ============================  ===========  =======================
evidence           CT (HU)                       MRI T1       PET (SUV)
=================  ============================  ===========  =======================
``all``            as its type (default)         dark         hot
``pet_occult``     sclerotic: very dense         very dark    ~ marrow (FDG-negative)
``mri_only``       ~ marrow (type infiltrative)  dark         ~ marrow
``ct_occult``      ~ marrow (type infiltrative)  dark         hot
=================  ============================  ===========  =======================

Every one of them is still a metastasis and is still labelled in every series (the
lesion labels do not change): that is why a single-modality detector cannot reach a
lesion sensitivity of 1 on this phantom, and what the fused classifier may win back.
Shares and appearance ranges are ``phantom.skeleton`` parameters (their sources are
comments in ``params.yaml``); a share of 0 switches a phenomenon off.

The choices and values are drawn from the patient's *evidence* generator, a stream of
its own with a fixed number of draws per metastasis: the anatomy, the metastases' types,
sites and appearance and every other draw are the same whatever the shares, so a share of
0 gives back the phantom without the phenomenon voxel for voxel (``skeleton-1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["EVIDENCE", "INFILTRATIVE", "VISIBLE", "apply_evidence"]

EVIDENCE = ("all", "pet_occult", "mri_only", "ct_occult")
INFILTRATIVE = "infiltrative"  # the type of a marrow-only metastasis (no bone destruction on CT)
# Which modality shows each kind by design (the data card measures it on the images).
VISIBLE = {
    "all": {"CT": True, "MR": True, "PT": True},
    "pet_occult": {"CT": True, "MR": True, "PT": False},
    "mri_only": {"CT": False, "MR": True, "PT": False},
    "ct_occult": {"CT": False, "MR": True, "PT": True},
}


def _uniform(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(*bounds))


def apply_evidence(rng: np.random.Generator, p: dict, metastases: list, marrow: dict[str, float]) -> None:
    """Give each metastasis its evidence kind, in place (``Finding.evidence``, values).

    Parameters
    ----------
    rng : the patient's evidence generator (not the anatomy's: see the module docstring).
    p : ``phantom.skeleton`` parameters: ``mri_only_fraction`` and ``ct_occult_fraction``
        (shares of all metastases), ``pet_occult_fraction`` (share of the *sclerotic*
        ones) and the appearance ranges ``*_ct_hu_delta`` (HU added to the patient's
        marrow) and ``*_suv_factor`` (times the patient's marrow SUV).
    metastases : the patient's :class:`~crossmodal.phantom.skeleton_anatomy.Finding` list.
    marrow : the patient's marrow value per modality (``CT`` HU, ``PT`` SUV).
    """
    mri_only, ct_occult = float(p["mri_only_fraction"]), float(p["ct_occult_fraction"])
    pet_occult = float(p["pet_occult_fraction"])
    for f in metastases:
        # Always the same six draws per metastasis, whatever the shares.
        u_marrow, u_pet = rng.uniform(), rng.uniform()
        occult_suv = _uniform(rng, p["pet_occult_suv_factor"]) * marrow["PT"]
        mri_hu = marrow["CT"] + _uniform(rng, p["mri_only_ct_hu_delta"])
        mri_suv = _uniform(rng, p["mri_only_suv_factor"]) * marrow["PT"]
        ct_hu = marrow["CT"] + _uniform(rng, p["ct_occult_ct_hu_delta"])
        if u_marrow < mri_only:  # early marrow infiltration: trabeculae intact, not (yet) FDG-avid
            f.evidence, f.type, f.ct_hu, f.ct_hu_core, f.suv = "mri_only", INFILTRATIVE, mri_hu, None, mri_suv
        elif u_marrow < mri_only + ct_occult:  # infiltrative, FDG-avid, no bone destruction
            f.evidence, f.type, f.ct_hu, f.ct_hu_core = "ct_occult", INFILTRATIVE, ct_hu, None
        elif f.type == "sclerotic" and u_pet < pet_occult:  # osteoblastic, FDG-negative
            f.evidence, f.suv = "pet_occult", occult_suv

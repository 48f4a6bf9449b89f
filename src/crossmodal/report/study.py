"""What a Part 1 page says about its study's data, written from ``params.yaml``.

Part 1's notebooks make the pages of every study (``studies:``), so no page states in its
own prose which data it shows: the notice at the top of each page (:func:`data_notice`) and
the ingestion page's account of the simulation (:func:`simulation_description`) are
written here from the study's cohorts, by what generated them (``phantom_kind``) or by
their being the user's own DICOM.
"""

from __future__ import annotations

from typing import Any

from crossmodal.params import study_cohort
from crossmodal.params.phantoms import phantom_kind
from crossmodal.params.rules import cohort_at

__all__ = ["cohort_description", "data_notice", "simulation_description", "locked_test_description"]

_SEX = {"M": "male", "F": "female", "O": "sex not stated by the source"}

#: The notice's title by what generated the development cohort.
_TITLES = {"pelvis": "Simulated data", "hybrid": "Real CT, simulated PET",
           "delineations": "Real CT, simulated PET", None: "Your data"}


def _kind(params: dict[str, Any], cohort: str) -> str | None:
    """The kind of generator behind ``cohort`` (None: the user's own DICOM)."""
    if params["cohort"][cohort].get("source") != "phantom":
        return None
    return phantom_kind(params["phantom"].get(cohort))


def cohort_description(params: dict[str, Any], cohort: str) -> str:
    """One clause saying what ``cohort`` is: what in it is real and what simulated."""
    source, section = params["cohort"][cohort], params["phantom"].get(cohort) or {}
    kind = _kind(params, cohort)
    if kind is None:
        return f"the DICOM tree `{source['root']}` ({source.get('cancer', cohort)})"
    if kind == "pelvis":
        return ("the **embedded pelvic PET/CT phantom**: a seeded, physically grounded simulation written as "
                "real CT and PET DICOM series and read back through the same ingestion a hospital export "
                "would take; no real patient")
    real = params["real_data"][section["real_data"]]
    package = f"`{real['package']}=={real['version']}`"
    if kind == "delineations":
        cases = section.get("cases", [])
        return (f"**{len(cases)} real CT scan{'s' if len(cases) != 1 else ''} with {'their' if len(cases) != 1 else 'its'} "
                f"real tumour delineation{'s' if len(cases) != 1 else ''}** ({package}), FDG-PET simulated from "
                "each real CT; nothing inserted")
    # PET activity follows the structures only where tissue_structures names them
    made_from = "its real organ structures" if section.get("tissue_structures") else "its tissues by CT number"
    region = section.get("region", "abdomen-pelvis")
    return (f"a **real {region} CT** ({package}; {_SEX[section.get('sex', 'M')]}) with **FDG-PET simulated** "
            f"from {made_from} and **lesions inserted**: its {section.get('n_patients')} patients share one real "
            "anatomy and differ in their lesions, PET noise and misregistration")


def locked_test_description(params: dict[str, Any]) -> str:
    """One clause saying what the study's locked test cohort is."""
    name = params["study"]["cohort"]
    root = study_cohort(params).get("test_root")
    if not root:
        return "none: the test patients are a split of the development cohort"
    other = cohort_at(params, root)  # another cohort's tree (the rules refuse the study's own root)
    if other is not None:
        return cohort_description(params, other)
    if _kind(params, name) is None:
        return f"the DICOM tree `{root}`"
    return f"drawn like the development cohort with its own seed (`phantom.{name}_test`)"


def data_notice(params: dict[str, Any]) -> str:
    """The MyST admonition at the top of a Part 1 page: the study, its cancer, and what is
    real and what simulated in its development and locked test cohorts."""
    name, cohort = params["study"]["name"], params["study"]["cohort"]
    kind = _kind(params, cohort)
    source = params["cohort"][cohort]
    closing = ("" if kind is None else
               " Nothing here is clinical performance: the simulated parts test the pipeline and the direction "
               "of effects on data with a known truth.")
    return (f"```{{admonition}} {_TITLES.get(kind, 'Simulated data')}\n:class: warning\n"
            f"Study **{name}** ({source.get('cancer', cohort)}, {source.get('body_region', 'body region not stated')}). "
            f"Development cohort: {cohort_description(params, cohort)}. "
            f"Locked test cohort: {locked_test_description(params)}.{closing}\n```")


_PELVIS_PHANTOM = """- **body, fat, muscle, couch**: elliptical body with a subcutaneous fat layer; CT couch under it
- **pelvic bones**: sacrum, iliac wings and femoral heads as ellipsoids (cortical HU)
- **bladder**: water on CT; very hot urinary FDG on PET; fills between CT and the later PET
- **rectum, bowel**: rectal wall with gas; bowel loops with physiological uptake
- **cervical tumour**: lobulated union of ellipsoids, near-isodense to the cervix on CT, hot on PET (`tumour_suvmax`, `node_suvmax`: the uniform uptake of the whole lesion before PET blur and noise), optional necrotic core
- **nodes**: small hot pelvic side-wall nodes
- **PET physics**: activity sampled finer, Gaussian PSF, binned to a coarser grid, Poisson counting noise, stored as Bq/ml with per-slice rescale and full SUV tags
- **CT physics**: Gaussian noise in HU; 16-bit storage with rescale intercept
- **misregistration**: rigid shift and rotation of PET relative to CT, stored in the truth sidecar

**Known limits.** Organs are ellipsoids, not segmented anatomy; no CT partial-volume
or beam hardening; PET noise is voxel-wise Poisson after the blur, not
reconstruction-correlated; no attenuation or scatter; no respiratory or bowel motion;
the bladder fill change is a radial scale, not a deformation of its neighbours. Results
on the phantom test the pipeline and the direction of effects, not clinical performance."""


def simulation_description(params: dict[str, Any]) -> str:
    """What the simulation behind the study's development cohort models and what it does
    not (a markdown list: prose, not a result table), by its generator; empty for the
    user's own DICOM."""
    cohort = params["study"]["cohort"]
    kind, section = _kind(params, cohort), params["phantom"].get(cohort) or {}
    if kind is None:
        return ""
    if kind == "pelvis":
        return _PELVIS_PHANTOM
    base = section.get("based_on", "pelvis")
    if section.get("primary_within"):
        primary = (f"inside {', '.join(section['primary_within'])} (at least "
                   f"{float(section.get('primary_within_fraction', 0.9)):.0%} of it), with the CT number of "
                   f"{section.get('primary_hu_tissue', 'uterus')} plus the lesion's contrast and noise")
    else:
        primary = f"against the posterior wall of the lower third of {', '.join(section.get('primary_beside', []))}"
    nodes = (f"beside {', '.join(section['node_beside'])}, in {', '.join(section.get('node_tissues', []))}"
             if section.get("node_beside") else "none inserted")
    return f"""- **CT**: real: every voxel outside an inserted lesion is the scanner's own value
- **PET activity**: simulated: each CT voxel's class by CT number (`hu_tissues`){', then by the real structures (`tissue_structures`)' if section.get('tissue_structures') else ''}; SUV per class from `phantom.{base}` and `organ_suv`
- **PET scanner**: `phantom.{base}`'s: PSF, coarser grid, Poisson counting noise, SUV tags
- **primary lesion**: simulated, inserted {primary}; size, shape and SUVmax from `phantom.{base}` unless set here (`tumour_radius_mm`)
- **nodes**: {nodes}
- **misregistration**: `phantom.{base}`'s rigid shift and rotation of PET relative to CT, stored in the truth sidecar

**Known limits.** One real patient: every simulated patient shares its anatomy, so the
detectors see one body many times; uniform uptake per tissue class; no partial-volume CT
edge at an inserted lesion; no motion between CT and PET beyond the rigid misregistration."""

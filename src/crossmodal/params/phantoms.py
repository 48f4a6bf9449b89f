"""``params.yaml`` models of the simulated cohorts (``phantom``) and of the real scans they
may start from (``real_data``)."""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AfterValidator
from pydantic import ConfigDict
from pydantic import Discriminator
from pydantic import Field
from pydantic import Tag
from pydantic import create_model

from crossmodal.params.value_types import Count
from crossmodal.params.value_types import CountRange
from crossmodal.params.value_types import Fraction
from crossmodal.params.value_types import Name
from crossmodal.params.value_types import ordered
from crossmodal.params.value_types import NonNeg
from crossmodal.params.value_types import PosFloat
from crossmodal.params.value_types import PosInt
from crossmodal.params.value_types import PosRange
from crossmodal.params.value_types import Probabilities
from crossmodal.params.value_types import Range
from crossmodal.params.value_types import Section
from crossmodal.params.value_types import Seed
from crossmodal.params.value_types import Size3
from crossmodal.params.value_types import Spacing3
from crossmodal.params.value_types import Vector3


class RealSource(Section):
    """A real scan in a package's source distribution (:mod:`crossmodal.io.registry`)."""

    package: Name
    version: Name
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    root: Name
    files: Annotated[dict[Name, Name], Field(min_length=1)]  # file name under root: path in the archive
    licence: Name
    citation: Name



# ------------------------------------------------------------------ phantoms


class PelvisPhantom(Section):
    seed: Seed
    n_patients: PosInt
    ct_size: Size3
    ct_spacing_mm: Spacing3
    pet_size: Size3
    pet_spacing_mm: Spacing3
    pet_oversample: PosInt
    pet_fwhm_mm: NonNeg
    pet_counts_per_suv: NonNeg
    ct_noise_hu: NonNeg
    body_half_width_mm: PosRange
    body_half_depth_mm: PosRange
    fat_mm: PosRange
    body_offset_mm: Annotated[list[float], Field(min_length=2, max_length=2)]
    bladder_radius_mm: PosRange
    bladder_suv: PosRange
    bladder_fill_change: PosRange
    bowel_loops: CountRange
    bowel_suv: PosRange
    bowel_lumen_fraction: Annotated[float, Field(ge=0, lt=1)]
    bowel_content_mix: Annotated[Probabilities, Field(min_length=1)]  # weights, keys of bowel_content_hu
    bowel_content_hu: Annotated[dict[Name, Range], Field(min_length=1)]
    bowel_focus_probability: Fraction
    bowel_focus_radius_mm: Annotated[list[PosFloat], Field(min_length=2, max_length=2),
                                     AfterValidator(ordered)]
    bowel_focus_suv: PosRange
    bowel_shift_mm: PosRange
    tumour_radius_mm: PosRange
    tumour_suvmax: PosRange
    tumour_ct_delta_hu: Range
    necrosis_probability: Fraction
    tumour_abuts_bladder_probability: Fraction
    tumour_bladder_indent: Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2),
                                     AfterValidator(ordered)]
    nodes: CountRange
    node_radius_mm: PosRange
    node_suvmax: PosRange
    node_fat_probability: Fraction
    node_fat_margin_mm: PosRange
    node_faint_probability: Fraction
    node_faint_suvmax: PosRange
    ureter_radius_mm: Annotated[list[PosFloat], Field(min_length=2, max_length=2),
                                AfterValidator(ordered)]
    ureter_lumen_fraction: Annotated[float, Field(gt=0, lt=1)]
    ureter_fat_mm: PosRange
    ureter_lumen_hu: Range
    ureter_suv: PosRange
    ureter_focus_probability: Fraction
    ureter_foci: CountRange
    ureter_focus_length_mm: PosRange
    ureter_focus_suv: PosRange
    misregistration_shift_mm: Vector3
    misregistration_rotation_deg: Vector3
    weight_kg: PosRange
    injected_dose_mbq_per_kg: PosFloat
    uptake_time_min: PosRange
    hu: dict[Name, float]
    suv: dict[Name, NonNeg]


class MetastasisLook(Section):
    ct_hu: Range
    ct_hu_core: Range | None = None
    t1: PosRange
    suv: PosRange


class MimicLook(Section):
    ct_hu: Range
    t1_factor: PosRange
    suv: PosRange


class SkeletonPhantom(Section):
    seed: Seed
    n_patients: PosInt
    positive_fraction: Fraction
    modality_probability: Probabilities
    ct_size: Size3
    ct_spacing_mm: Spacing3
    mr_size: Size3
    mr_spacing_mm: Spacing3
    pet_size: Size3
    pet_spacing_mm: Spacing3
    oversample: dict[Name, PosInt]
    modality_shift_mm: Vector3
    ct_noise_hu: NonNeg
    mr_scale: PosFloat
    mr_noise: NonNeg
    mr_bias_amplitude: NonNeg
    pet_fwhm_mm: NonNeg
    pet_counts_per_suv: NonNeg
    body_half_width_mm: PosRange
    body_half_depth_mm: PosRange
    fat_mm: PosRange
    n_thoracic: Count
    n_lumbar: Count
    vertebra_height_mm: PosRange
    disc_mm: PosRange
    vertebra_half_width_mm: PosRange
    vertebra_half_depth_mm: PosRange
    cortex_mm: PosRange
    rib_radius_mm: PosRange
    bladder_radius_mm: PosRange
    hu: dict[Name, float]
    marrow_hu: Range
    t1: dict[Name, NonNeg]
    marrow_t1: PosRange
    suv: dict[Name, NonNeg]
    marrow_suv: PosRange
    kidney_suv: PosRange
    bladder_suv: PosRange
    metastases: CountRange
    metastasis_radius_mm: PosRange
    metastasis_types: Probabilities
    metastasis_sites: Probabilities
    metastasis_appearance: dict[Name, MetastasisLook]
    pet_occult_fraction: Fraction  # of the sclerotic metastases (phantom.skeleton_phenomena; 0 = off)
    pet_occult_suv_factor: PosRange
    mri_only_fraction: Fraction  # of all metastases (with ct_occult_fraction: sum <= 1, rules)
    mri_only_ct_hu_delta: Annotated[list[Annotated[float, Field(ge=-100, le=100)]], Field(min_length=2, max_length=2),
                                    AfterValidator(ordered)]
    mri_only_suv_factor: Annotated[list[Annotated[float, Field(gt=0, le=1.5)]], Field(min_length=2, max_length=2),
                                   AfterValidator(ordered)]
    ct_occult_fraction: Fraction
    ct_occult_ct_hu_delta: Annotated[list[Annotated[float, Field(ge=-100, le=100)]], Field(min_length=2, max_length=2),
                                     AfterValidator(ordered)]
    mimics: CountRange
    mimic_radius_mm: PosRange
    mimic_types: Probabilities
    mimic_appearance: dict[Name, MimicLook]
    haemangioma_period_mm: PosFloat
    fracture_line_mm: PosFloat
    weight_kg: PosRange
    injected_dose_mbq_per_kg: PosFloat
    uptake_time_min: PosRange
    study_spread_days: Count


class TestPhantom(Section):
    """A locked test cohort drawn from another phantom's ranges with its own seed."""

    seed: Seed
    n_patients: PosInt


class _HybridKeys(Section):
    """A real CT with simulated PET and inserted lesions (:mod:`crossmodal.phantom.hybrid_pelvis`).

    The primary goes against the wall of ``primary_beside`` (real structures) or within the
    ``primary_within`` activity classes (e.g. aerated lung); nodes go beside ``node_beside``
    (none where it is empty). Without any structure key the CT needs no structures file."""

    based_on: Name  # the phantom section every other value comes from
    real_data: Name  # the real_data entry holding the CT (and its structures, if any)
    seed: Seed
    n_patients: PosInt
    sex: Literal["M", "F", "O"] = "M"        # the real patient's, as the source states it
    region: Name = "abdomen-pelvis"          # the CT series description's body region
    crop_structures: list[Name] = []         # z range: their extent + margin; [] = the whole CT
    crop_margin_mm: NonNeg = 0.0
    hu_tissues: Annotated[dict[Name, Range], Field(min_length=1)]
    tissue_structures: dict[Name, Annotated[list[Name], Field(min_length=1)]] = {}
    organ_suv: dict[Name, PosRange] = {}
    primary_beside: list[Name] = []
    primary_within: list[Name] = []
    primary_within_fraction: Fraction = 0.9  # share of the primary's voxels in primary_within
    primary_hu_tissue: Name = "uterus"       # the phantom hu entry a primary's CT value starts from
    node_beside: list[Name] = []
    node_tissues: list[Name] = []
    node_gap_mm: PosRange | None = None
    pet_margin_voxels: Count
    sources: dict[Name, Name] = {}           # the source of each value of the based_on phantom set here (data card)


def _optional_phantom_keys(keys: type[Section], base: type[Section] = PelvisPhantom) -> dict[str, Any]:
    """Every key of the ``base`` phantom that ``keys`` lacks, optional, with its own checks."""
    def checked(field: Any) -> Any:
        return Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation

    return {name: (checked(field) | None, None)
            for name, field in base.model_fields.items() if name not in keys.model_fields}


#: A hybrid section: its own keys, and any value of the phantom it is ``based_on`` (a fork's
#: lesion sizes, SUVs, scanner), checked as that phantom checks it.
HybridPelvisPhantom = create_model("HybridPelvisPhantom", __base__=_HybridKeys,
                                   __doc__=_HybridKeys.__doc__, **_optional_phantom_keys(_HybridKeys))


class _HybridSkeletonKeys(Section):
    """A real CT's skeleton with simulated MR and PET and inserted metastases and mimics
    (:mod:`crossmodal.phantom.hybrid_skeleton`): findings are centred in the marrow of the
    real ``bone_structures`` of their site group; MR and PET are simulated from the CT's
    tissue classes (``hu_tissues`` inside the body, ``tissue_structures``, bone: cortex at or
    above ``cortex_hu``, else marrow)."""

    based_on: Name  # the skeletal phantom every other value comes from
    real_data: Name  # the real_data entry holding the CT and its structures
    seed: Seed
    n_patients: PosInt
    sex: Literal["M", "F", "O"] = "M"
    body_hu: float                           # the body: the largest region above this CT number
    hu_tissues: Annotated[dict[Name, Range], Field(min_length=1)]   # phantom tissue names
    tissue_structures: dict[Name, Annotated[list[Name], Field(min_length=1)]] = {}
    bone_structures: Annotated[dict[Name, Annotated[list[Name], Field(min_length=1)]], Field(min_length=1)]
    cortex_hu: float
    edge_margin_mm: NonNeg                   # a finding's centre at least this far inside the scan
    sources: dict[Name, Name] = {}


#: A hybrid skeletal section: its own keys, and any value of the skeletal phantom it is
#: ``based_on`` (finding shares, looks, scanner), checked as that phantom checks it.
HybridSkeletonPhantom = create_model("HybridSkeletonPhantom", __base__=_HybridSkeletonKeys,
                                     __doc__=_HybridSkeletonKeys.__doc__,
                                     **_optional_phantom_keys(_HybridSkeletonKeys, SkeletonPhantom))


class HybridDelineationsPhantom(Section):
    """Real CTs with their real lesion masks and a simulated PET
    (:mod:`crossmodal.phantom.hybrid_delineations`); one patient per case."""

    based_on: Name  # the phantom section the scanner values come from
    real_data: Name  # the real_data entry holding <case>_ct.nrrd and <case>_lesion.nrrd
    cases: Annotated[list[Name], Field(min_length=1)]
    seed: Seed
    label: Annotated[int, Field(ge=1, le=255)]
    hu_tissues: Annotated[dict[Name, Range], Field(min_length=1)]
    tissue_suv: Annotated[dict[Name, Annotated[list[NonNeg], Field(min_length=2, max_length=2),
                                               AfterValidator(ordered)]], Field(min_length=1)]
    lesion_suvmax: PosRange
    pet_margin_voxels: Count


def phantom_kind(section: Any) -> str | None:
    """Which generator a ``phantom.<cohort>`` section is for, by its keys (not its name, so a
    fork's cohort needs no code): ``test`` (a locked test cohort's seed and size),
    ``delineations`` (real ``cases``), ``hybrid_skeleton`` (a real CT's ``bone_structures``
    ``based_on`` the skeletal phantom), ``hybrid`` (a real CT ``based_on`` a phantom),
    ``skeleton`` (CT, MR and PET grids) or ``pelvis`` (the PET/CT phantom)."""
    if not isinstance(section, dict):
        return None
    if set(section) <= {"seed", "n_patients"}:
        return "test"
    if "based_on" in section:
        if "bone_structures" in section:
            return "hybrid_skeleton"
        return "delineations" if "cases" in section else "hybrid"
    return "skeleton" if "mr_size" in section else "pelvis"


#: A phantom section of any name, checked as the kind its keys say (:func:`phantom_kind`).
PhantomSection = Annotated[
    Annotated[PelvisPhantom, Tag("pelvis")] | Annotated[TestPhantom, Tag("test")]
    | Annotated[HybridPelvisPhantom, Tag("hybrid")] | Annotated[HybridDelineationsPhantom, Tag("delineations")]
    | Annotated[SkeletonPhantom, Tag("skeleton")] | Annotated[HybridSkeletonPhantom, Tag("hybrid_skeleton")],
    Discriminator(phantom_kind)]


class Phantoms(Section):
    """The embedded study's phantom sections by name; a section of another name (a fork's
    cohort) is checked as the kind its keys say."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, PhantomSection]

    pelvis: PelvisPhantom | None = None
    pelvis_test: TestPhantom | None = None
    pelvis_real_anatomy: HybridPelvisPhantom | None = None
    lung_real_delineations: HybridDelineationsPhantom | None = None
    skeleton: SkeletonPhantom | None = None
    skeleton_real_anatomy: HybridSkeletonPhantom | None = None

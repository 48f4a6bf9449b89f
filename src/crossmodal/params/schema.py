"""What ``params.yaml`` may contain: one pydantic model per section.

Every model forbids unknown keys (a misspelt option fails instead of being ignored) and is
strict (``"40"`` is not an integer; an integer is a valid float). Open-ended mappings
(cohort names, fusion input names, tissue tables, per-detector options) are ``dict``
fields: their keys are free, their values are still checked. Only single-field rules live
here; rules across fields and sections are in :mod:`crossmodal.params.rules`.
Validation only checks: :func:`crossmodal.params.load_params` returns the file's own
values, never the models.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field

from crossmodal.params.phantoms import Phantoms
from crossmodal.params.phantoms import RealSource
from crossmodal.params.value_types import Count
from crossmodal.params.value_types import Device
from crossmodal.params.value_types import Fraction
from crossmodal.params.value_types import Jobs
from crossmodal.params.value_types import Level
from crossmodal.params.value_types import Name
from crossmodal.params.value_types import NonNeg
from crossmodal.params.value_types import Option
from crossmodal.params.value_types import PosFloat
from crossmodal.params.value_types import PosInt
from crossmodal.params.value_types import Range
from crossmodal.params.value_types import Section
from crossmodal.params.value_types import Seed
from crossmodal.params.value_types import Size3
from crossmodal.params.value_types import Stride32
from crossmodal.params.value_types import Window

__all__ = ["Params"]


# ------------------------------------------------------------------ compute, cohort, ingest


class Compute(Section):
    jobs: Jobs = "auto"
    detector_runs: Jobs = "auto"
    backend: Literal["processes", "dask"] = "processes"
    scheduler: Name | None = None  # dask: a running scheduler's address; null: a LocalCluster
    devices: Annotated[list[Name | Count], Field(min_length=1)] | None = None


class Reproducibility(Section):
    cpu_kernels: Literal["avx2"] | None = "avx2"  # crossmodal.reproducible; null: the CPU's fastest
    training_threads: PosInt = 1


class CohortSource(Section):
    source: Literal["phantom", "dicom"]
    root: Name
    test_root: Name | None = None  # a locked test cohort (inference only)
    labels_dir: Name
    truth_dir: Name
    modalities: Annotated[list[Name], Field(min_length=1)]
    required_modalities: list[Name]
    label_modalities: list[Name]
    group_by: Literal["study", "patient"]
    require_nonempty_label: bool
    modality_names: dict[Name, Name] | None = None
    patient_label: Literal["truth", "labels"] | None = None
    label_names: Annotated[dict[PosInt, Name], Field(min_length=1)]
    cancer: Name
    body_region: Name


class NnunetDataset(Section):
    id: Annotated[int, Field(ge=1, le=999)]
    name: Name


class Ingest(Section):
    pseudonym_salt: Name
    max_slice_gap_ratio: Annotated[float, Field(gt=1)]
    spacing_tolerance_mm: NonNeg
    nnunet_dataset: NnunetDataset


# ------------------------------------------------------------------ Part 1 imaging


class Register(Section):
    engine: Literal["sitk", "elastix"] = "sitk"
    kind: Literal["rigid", "affine"]
    metric: Literal["mattes", "correlation", "meansquares"]
    bins: PosInt
    sampling: Annotated[float, Field(gt=0, le=1)]
    iterations: PosInt
    learning_rate: PosFloat
    min_step: PosFloat
    initialization: Literal["center", "geometry", "moments"]
    shrink_factors: Annotated[list[PosInt], Field(min_length=1)]
    smoothing_sigmas: Annotated[list[NonNeg], Field(min_length=1)]
    ct_range: Range | None
    pet_range: Range | None
    fov_margin_mm: NonNeg | None
    seed: Seed
    threads: PosInt | None


class Enhance(Section):
    ct_window: Window
    suv_max: PosFloat
    clahe: bool


class Localise(Section):
    region: Literal["edges", "body"] = "edges"  # crop: body edges x bone edges, or the body box
    bone_window: Window = [150.0, 1000.0]
    ct_threshold_hu: float
    pet_sigma: NonNeg
    margin: Count


class SliceChoice(Section):
    negatives_per_positive: NonNeg
    hot_negative_suv: PosFloat


class FusionInput(Section):
    method: Name  # a registered fusion method (checked in rules)
    refine: bool = True
    crop: bool = True
    layout: Literal["method", "ct_pet_fused"] = "method"  # ct_pet_fused: [CT, PET, grey(method)]


class AlignFuse(Section):
    seed: Seed
    image_size: PosInt
    register_: Register = Field(alias="register")  # a BaseModel attribute name otherwise
    enhance: Enhance
    localise: Localise
    slices: SliceChoice
    quality_slices_per_case: PosInt
    inputs: Annotated[dict[Name, FusionInput], Field(min_length=1)]
    method_options: dict[Name, dict[Name, Option]]  # names checked against each method's signature (rules)
    figure_case: Count


# ------------------------------------------------------------------ Part 1 data card


class CandidateFeatures(Section):
    PET: Annotated[list[Name], Field(min_length=1)]  # names of crossmodal.learn.oracle.FEATURES
    CT: Annotated[list[Name], Field(min_length=1)]


class Oracle(Section):
    n_splits: Annotated[int, Field(ge=2)]
    n_repeats: PosInt
    seed: Seed
    C: PosFloat  # inverse L2 penalty of the logistic regression


class SkeletonThresholds(Section):
    # conspicuity of a region at or above which it counts as seen (data_card_skeleton)
    CT: PosFloat  # root mean square of HU - marrow HU
    MR: Annotated[float, Field(gt=0, lt=1)]  # T1 darkening: 1 - region / marrow
    PT: PosFloat  # SUVmax / marrow SUV - 1


class DataCardSkeleton(Section):
    reference_radius_mm: PosFloat
    thresholds: SkeletonThresholds
    min_per_class: Annotated[int, Field(ge=2)]
    oracle: Oracle
    n_boot: PosInt
    boot_seed: Seed
    ci: Level


class DataCard(Section):
    shell_mm: PosFloat
    top_voxels: PosInt
    fat_hu: Window
    target_px: PosFloat
    features: CandidateFeatures
    oracle: Oracle
    n_boot: PosInt
    boot_seed: Seed
    ci: Level


# ------------------------------------------------------------------ Part 1 detection


class DetectorRuns(Section):
    name: Name
    inputs: Literal["all"] | Annotated[list[Name], Field(min_length=1)]


class ReferenceRule(Section):
    """The non-learned reference: SUV threshold with a CT water-density veto."""

    name: Literal["suv_threshold"]
    input: Name  # an input whose channels 0 and 1 are CT and PET (rules)
    suv_threshold: PosFloat
    water_hu: Range
    min_pixels: PosInt


class Split(Section):
    fractions: Annotated[list[Fraction], Field(min_length=2, max_length=3)]  # [train, val (, test)]: rules
    seed: Seed


class DetectTrain(Section):
    epochs: PosInt
    imgsz: PosInt | None = None  # derived from align_fuse.image_size
    batch: PosInt
    device: Device
    options: dict[Name, dict[Name, Option]] = {}


class DetectPredict(Section):
    conf: Fraction
    max_det: PosInt = 300


LesionHit = Literal["iou", "center"]  # detect.metrics.lesion_sensitivity's rules


class DetectEvaluate(Section):
    operating_rule: Literal["max_f1", "min_recall", "min_precision"]
    lesion_hit: LesionHit
    n_boot: PosInt
    ci: Level
    seed: Seed


class ClaimSpec(Section):
    says: Name  # the thesis's words, shown beside our number
    metric: Name  # "primary" (AP50 of analysis.primary_class) or a metrics.csv column
    references: Annotated[list[Name], Field(min_length=1)]  # chosen among on validation
    thesis: float | None  # the thesis's effect size; None where it gives no number
    better: Literal["higher", "lower"]


class DetectAnalysis(Section):
    alpha: Level
    multiplicity: Literal["holm", "none"]
    primary_class: Name  # a cohort.pelvis.label_names name (rules)
    secondary_metrics: list[Name] = []
    matched_sensitivity: Annotated[float, Field(gt=0, le=1)]
    thesis_reading: Literal["absolute", "relative"]
    claims: Annotated[dict[Name, ClaimSpec], Field(min_length=1)]
    controls: dict[Name, list[Name]] = {}  # claim -> inputs reported beside it
    gate: dict[Literal["min_val_ap"], Fraction] = {}  # sanity gate on the primary endpoint (validation)
    min_test_patients: Annotated[int, Field(ge=1)] = 1  # fewer test patients: no verdict


class Detect(Section):
    proposed: Name
    inputs: Annotated[list[Name], Field(min_length=1)]
    detectors: Annotated[list[DetectorRuns], Field(min_length=1)]
    reference: ReferenceRule | None = None
    seeds: Annotated[list[Seed], Field(min_length=1)]
    split: Split
    train_slice_stride: PosInt = 1
    train: DetectTrain
    predict: DetectPredict
    evaluate: DetectEvaluate
    analysis: DetectAnalysis


# ------------------------------------------------------------------ Part 2


class Channels(Section):
    windows: Annotated[list[Window], Field(min_length=1)]
    scale: Literal["none", "percentile"] = "none"
    percentile: Annotated[float, Field(gt=0, le=100)] = 99.0
    body_threshold: Fraction | None = None
    margin: Count | None = None
    body_component: Literal["all", "largest"] = "all"
    fill: float | None = None


class Part2Train(Section):
    epochs: PosInt
    batch: PosInt
    workers: Count = 0
    options: dict[Name, Option] = {}


class Part2Predict(Section):
    ap_conf: Fraction
    batch: PosInt
    max_det: PosInt
    iou: Fraction


class Part2Detect(Section):
    seed: Seed
    leakage: Literal["cross_fit", "holdout"]
    n_folds: Annotated[int, Field(ge=2)]
    holdout_fraction: Annotated[float, Field(gt=0, lt=1)]
    val_fraction: Annotated[float, Field(ge=0, lt=1)]
    detector: Name
    scale: Name
    slice_size: Annotated[list[Stride32], Field(min_length=2, max_length=2)]  # height, width
    tile_size: Stride32
    min_lesion_px: PosInt
    negatives_per_positive: NonNeg
    min_box_pixels: Count
    learning_curve: list[Annotated[float, Field(gt=0, lt=1)]] = []
    device: Device
    train: Part2Train
    predict: Part2Predict
    n_boot: PosInt
    ci: Level
    lesion_hit: LesionHit
    channels: dict[Name, Channels]


class Features(Section):
    conf: Fraction
    high: Fraction
    n_bins: PosInt
    normalise: Literal["slices", "total"]
    presence_flags: bool


class CrossValidation(Section):
    n_splits: Annotated[int, Field(ge=2)]
    n_repeats: PosInt
    seed: Seed


class ClassifyClaims(Section):
    thesis_c5_accuracy: float
    thesis_c5_auc: float
    delong_alpha: Level


ClassifierMetric = Literal["accuracy", "auc", "sensitivity", "specificity", "f1", "pr_auc"]


class SkeletonClaimSpec(Section):
    says: Name
    metric: ClassifierMetric
    comparator: Literal["single_modality", "early_fusion"]
    secondary: list[ClassifierMetric] = []


class SkeletonAnalysis(Section):
    multiplicity: Literal["holm", "none"]
    claims: Annotated[dict[Name, SkeletonClaimSpec], Field(min_length=1)]


class Classify(Section):
    classifiers: Annotated[list[Name], Field(min_length=1)]
    cv: CrossValidation
    n_boot: PosInt
    boot_seed: Seed
    threshold: Fraction
    ci: Level
    claims: ClassifyClaims
    nested: dict[Literal["inner_splits", "n_repeats"], PosInt]  # nested selection (rules: >= 2, <= cv)
    gate: dict[Literal["detector_ap50_ci_low"], Fraction]  # a modality is a comparator from this AP50 CI low
    analysis: SkeletonAnalysis


class C3dTrain(Section):
    width: PosInt
    epochs: PosInt
    lr: PosFloat
    batch_size: PosInt
    weight_decay: NonNeg
    dropout: Annotated[float, Field(ge=0, lt=1)]
    balance: bool
    augment: bool


class C3dGate(Section):
    modality: Name  # a cohort.skeleton modality (rules)
    epochs: PosInt
    sanity_auc_ci_low: Fraction
    fallback: dict[Literal["bins", "C"], PosFloat]  # joint-histogram bins per channel, L2 C


class C3d(Section):
    seed: Seed
    n_repeats: PosInt
    reference: Annotated[list[Name], Field(min_length=1)]
    grid_size: Size3
    antialias: bool = True
    channels: dict[Name, Channels]
    device: Device
    train: C3dTrain
    gate: C3dGate


class CohortReport(Section):
    montage_patients: PosInt
    ct_window: Window
    suv_display_max: PosFloat


class StudySections(Section):
    """The entries of the Part 1 sections one study replaces (merged as a profile's are)."""

    align_fuse: dict[str, Any] = {}
    data_card: dict[str, Any] = {}
    detect: dict[str, Any] = {}
    cohort_report: dict[str, Any] = {}


class Study(Section):
    """One Part 1 study: its development cohort and the section entries it replaces."""

    cohort: Name                      # a key of ``cohort``: the study's development cohort
    sections: StudySections = StudySections()


class ActiveStudy(Section):
    """The study a load resolved (``load_params(study=...)``): its name and cohort."""

    name: Name
    cohort: Name


# ------------------------------------------------------------------ the file


class Params(Section):
    """``params.yaml`` with one profile applied (``profiles`` itself is checked apart)."""

    profile: Name
    study: ActiveStudy | None = None
    studies: Annotated[dict[Name, Study], Field(min_length=1)]
    compute: Compute = Compute()
    reproducibility: Reproducibility = Reproducibility()
    cohort: Annotated[dict[Name, CohortSource], Field(min_length=1)]
    real_data: dict[Name, RealSource] = {}
    phantom: Phantoms
    ingest: Ingest
    align_fuse: AlignFuse
    data_card: DataCard
    data_card_skeleton: DataCardSkeleton | None = None
    detect: Detect
    part2_detect: Part2Detect
    features: Features
    classify: Classify
    c3d: C3d
    cohort_report: CohortReport

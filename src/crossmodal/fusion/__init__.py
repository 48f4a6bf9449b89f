"""PET/CT image fusion: a registry of fusion methods and fusion quality metrics.

>>> from crossmodal.fusion import fuse, list_methods
>>> "adaptive_region" in list_methods()
True

See :mod:`crossmodal.fusion.methods` for the methods (method spec Part 1 steps 5-6)
and :mod:`crossmodal.fusion.metrics` for EN, SD, SF, MI, SSIM and Q^AB/F.
"""

from crossmodal.fusion.methods import FUSION_METHODS
from crossmodal.fusion.methods import fuse
from crossmodal.fusion.methods import guided_filter
from crossmodal.fusion.methods import list_methods
from crossmodal.fusion.methods import pca_weights
from crossmodal.fusion.methods import register_fusion
from crossmodal.fusion.metrics import entropy
from crossmodal.fusion.metrics import fusion_quality
from crossmodal.fusion.metrics import mutual_information
from crossmodal.fusion.metrics import qabf
from crossmodal.fusion.metrics import spatial_frequency
from crossmodal.fusion.metrics import ssim
from crossmodal.fusion.metrics import std_dev
from crossmodal.fusion.metrics import to_gray

__all__ = [
    "FUSION_METHODS",
    "entropy",
    "fuse",
    "fusion_quality",
    "guided_filter",
    "list_methods",
    "mutual_information",
    "pca_weights",
    "qabf",
    "register_fusion",
    "spatial_frequency",
    "ssim",
    "std_dev",
    "to_gray",
]

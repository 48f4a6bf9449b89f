"""PET/CT image fusion: a registry of fusion methods and fusion quality metrics.

>>> from crossmodal.imaging.fusion import fuse, list_methods
>>> "adaptive_region" in list_methods()
True

See :mod:`crossmodal.imaging.fusion.methods` for the methods (method spec Part 1 steps 5-6)
and :mod:`crossmodal.imaging.fusion.metrics` for EN, SD, SF, MI, SSIM and Q^AB/F.
"""

from crossmodal.imaging.fusion.methods import FUSION_METHODS
from crossmodal.imaging.fusion.methods import fuse
from crossmodal.imaging.fusion.methods import guided_filter
from crossmodal.imaging.fusion.methods import list_methods
from crossmodal.imaging.fusion.methods import method_options
from crossmodal.imaging.fusion.methods import pca_weights
from crossmodal.imaging.fusion.methods import register_fusion
from crossmodal.imaging.fusion.metrics import entropy
from crossmodal.imaging.fusion.metrics import fusion_quality
from crossmodal.imaging.fusion.metrics import mutual_information
from crossmodal.imaging.fusion.metrics import qabf
from crossmodal.imaging.fusion.metrics import spatial_frequency
from crossmodal.imaging.fusion.metrics import ssim
from crossmodal.imaging.fusion.metrics import std_dev
from crossmodal.imaging.fusion.metrics import to_gray

__all__ = [
    "FUSION_METHODS",
    "entropy",
    "fuse",
    "fusion_quality",
    "guided_filter",
    "list_methods",
    "method_options",
    "mutual_information",
    "pca_weights",
    "qabf",
    "register_fusion",
    "spatial_frequency",
    "ssim",
    "std_dev",
    "to_gray",
]

"""crossmodal — an open re-implementation of a cross-modal image-fusion study.

Part 1: PET/CT fusion for cervical-cancer lesion detection.
Part 2: feature-transformed CT/MRI/PET fusion for bone-metastasis diagnosis.

Subpackages are imported on demand (``crossmodal.io``, ``crossmodal.phantom``, ...),
so ``import crossmodal`` stays cheap.
"""

__version__ = "0.1.0"

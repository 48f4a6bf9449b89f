"""Part 1 (PET/CT lesion detection, claims C1-C4): one module per DVC stage."""

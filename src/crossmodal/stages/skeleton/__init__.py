"""Part 2 (bone metastasis, claims C5-C7): one module per DVC stage."""

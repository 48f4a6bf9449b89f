"""Part 2 learning: confidence-bin features (:mod:`.features`), classifiers
(:mod:`.classify`) and the C3D early-fusion network (:mod:`.c3d`)."""

"""Image operations shared by both parts: windows and enhancement, body localisation,
letterboxing (:mod:`.preprocess`), rigid registration (:mod:`.register`) and fusion
(:mod:`.fusion`)."""

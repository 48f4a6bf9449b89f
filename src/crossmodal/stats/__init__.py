"""Statistics shared by both parts: the patient bootstrap and percentile CI
(:mod:`.bootstrap`), the claim verdict rule (:mod:`.verdict`) and DeLong's AUC test
(:mod:`.delong`)."""

"""Statistics shared by both parts: DeLong's AUC test (:mod:`.delong`)."""

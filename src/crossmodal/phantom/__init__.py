"""Seeded simulated cohorts written as real DICOM: the embedded default data.

Every output of this package is simulated, and the book labels it so.
"""

"""Where each ``phantom.pelvis`` parameter's default comes from.

One short source string per top-level key of ``phantom.pelvis`` in ``params.yaml``: a
published reference for the phenomenon or range, "our estimate" where no reference fixes
the number, or "design choice: <why>" for grids, noise and seeds. A reference named here
supports the phenomenon (or the threshold quoted); the number itself is ours unless the
string says otherwise. No default was tuned to make any input win. The book renders this
table; a test checks that it names every key and no other.
"""

from __future__ import annotations

__all__ = ["HYBRID_DELINEATIONS_PARAMETER_SOURCES", "HYBRID_PELVIS_PARAMETER_SOURCES", "PELVIS_PARAMETER_SOURCES", "REFERENCES"]

KOSTAKOGLU_2004 = "Kostakoglu et al., RadioGraphics 2004;24:1411-1431"
COOK_1996 = "Cook, Fogelman, Maisey, Semin Nucl Med 1996;26:308-314"
SIRONI_2006 = "Sironi et al., Radiology 2006;238:272-279"
GRIGSBY_2001 = "Grigsby et al., J Clin Oncol 2001;19:3745-3749"
RECIST_2009 = "Eisenhauer et al., Eur J Cancer 2009 (RECIST 1.1)"
WAHL_2009 = "Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S (PERCIST)"
WASSERTHAL_2023 = "Wasserthal et al., Radiol Artif Intell 2023;5:e230024 (TotalSegmentator)"
GRIETHUYSEN_2017 = "van Griethuysen et al., Cancer Res 2017;77:e104-e107 (PyRadiomics)"

REFERENCES = {
    KOSTAKOGLU_2004: "Kostakoglu L, Hardoff R, Mirtcheva R, Goldsmith SJ. PET-CT fusion imaging in "
                     "differentiating physiologic from pathologic FDG uptake. "
                     "RadioGraphics 2004;24:1411-1431.",
    COOK_1996: "Cook GJR, Fogelman I, Maisey MN. Normal physiological and benign pathological variants of "
               "18-fluoro-2-deoxyglucose positron-emission tomography scanning: potential for error in "
               "interpretation. Semin Nucl Med 1996;26:308-314.",
    SIRONI_2006: "Sironi S, Buda A, Picchio M, et al. Lymph node metastasis in patients with clinical "
                 "early-stage cervical cancer: detection with integrated FDG PET/CT. "
                 "Radiology 2006;238:272-279.",
    GRIGSBY_2001: "Grigsby PW, Siegel BA, Dehdashti F. Lymph node staging by positron emission tomography in "
                  "patients with carcinoma of the cervix. J Clin Oncol 2001;19:3745-3749.",
    WAHL_2009: "Wahl RL, Jacene H, Kasamon Y, Lodge MA. From RECIST to PERCIST: evolving considerations for "
               "PET response criteria in solid tumors. J Nucl Med 2009;50 Suppl 1:122S-150S.",
    WASSERTHAL_2023: "Wasserthal J, Breit H-C, Meyer MT, et al. TotalSegmentator: robust segmentation of 104 "
                     "anatomic structures in CT images. Radiology: Artificial Intelligence 2023;5(5):e230024.",
    GRIETHUYSEN_2017: "van Griethuysen JJM, Fedorov A, Parmar C, et al. Computational radiomics system to decode "
                      "the radiographic phenotype. Cancer Research 2017;77(21):e104-e107.",
    RECIST_2009: "Eisenhauer EA, Therasse P, Bogaerts J, et al. New response evaluation criteria in solid "
                 "tumours: revised RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247.",
}

_PHYSIOLOGICAL = f"{KOSTAKOGLU_2004}; {COOK_1996}"

PELVIS_PARAMETER_SOURCES: dict[str, str] = {
    # seed, size, grids, physics
    "seed": "design choice: fixed so the cohort is reproducible",
    "n_patients": "design choice: cohort size per profile (runtime budget)",
    "ct_size": "design choice: 500 mm transaxial field of view, pelvis in z",
    "ct_spacing_mm": "design choice: a usual clinical CT grid (about 3 mm)",
    "pet_size": "design choice: covers the CT field of view",
    "pet_spacing_mm": "design choice: a usual clinical PET grid (4 mm)",
    "pet_oversample": "design choice: activity sampled finer than the PET grid before the PSF",
    "pet_fwhm_mm": "our estimate: the resolution of a clinical PET/CT scanner",
    "pet_counts_per_suv": "design choice: noise level giving a visibly noisy but readable PET",
    "ct_noise_hu": "our estimate: low-dose CT of a PET/CT study",
    # body and organs
    "body_half_width_mm": "our estimate: adult female pelvis",
    "body_half_depth_mm": "our estimate: adult female pelvis",
    "fat_mm": "our estimate: subcutaneous fat thickness",
    "body_offset_mm": "our estimate: patients are not centred on the table",
    "bladder_radius_mm": "our estimate: partly to well-filled bladder",
    "bladder_suv": f"urinary FDG in the bladder: {_PHYSIOLOGICAL}; range our estimate",
    "bladder_fill_change": "our estimate: the bladder fills between the CT and the later PET",
    "bowel_loops": "our estimate: small-bowel and sigmoid loops in the pelvic field of view",
    "bowel_suv": f"physiological bowel uptake: {_PHYSIOLOGICAL}; range our estimate",
    "bowel_lumen_fraction": "our estimate: wall a few mm thick around the lumen",
    "bowel_content_mix": "our estimate: gas, positive oral contrast or fluid "
                         "(the contrast share depends on the protocol)",
    "bowel_content_hu": "gas near air, positive oral contrast +150..+400 HU, fluid water-like: our estimate",
    "bowel_focus_probability": f"focal physiological bowel uptake: {_PHYSIOLOGICAL}; share our estimate",
    "bowel_focus_radius_mm": "our estimate: a short bowel segment",
    "bowel_focus_suv": f"focal physiological bowel uptake that mimics disease: {KOSTAKOGLU_2004}; "
                       "range our estimate",
    "bowel_shift_mm": "our estimate: peristalsis between the CT and the PET acquisition",
    # tumour
    "tumour_radius_mm": "our estimate: cervical tumours of about 1.5 to 4.5 cm",
    "tumour_suvmax": "our estimate: FDG-avid squamous cervical carcinoma",
    "tumour_ct_delta_hu": "our estimate: cervical tumours are near-isodense to the cervix on non-contrast CT",
    "necrosis_probability": "our estimate: share of larger tumours with a necrotic core",
    "tumour_abuts_bladder_probability": "our estimate: tumours reaching the posterior bladder wall",
    "tumour_bladder_indent": "our estimate: from touching to pushing into the bladder wall",
    # nodes
    "nodes": "our estimate: 0-3 nodal metastases in the pelvic field of view",
    "node_radius_mm": "our estimate: diameters 8-16 mm, around the 10 mm short-axis threshold of "
                      f"{RECIST_2009}",
    "node_suvmax": f"FDG-avid nodal metastases: {GRIGSBY_2001}; range our estimate",
    "node_fat_probability": "our estimate: pelvic sidewall nodes lie in perivascular fat along the "
                            "iliac vessels",
    "node_fat_margin_mm": "our estimate: fat pad around a sidewall node",
    "node_faint_probability": f"PET misses small nodal metastases: {SIRONI_2006}; {GRIGSBY_2001}; "
                              "share our estimate",
    "node_faint_suvmax": f"PET/CT misses small nodal metastases: {SIRONI_2006}; range our estimate",
    # ureters
    "ureter_radius_mm": "our estimate: a non-dilated ureter (outer diameter 5-8 mm)",
    "ureter_lumen_fraction": "our estimate: lumen inside a wall of about 1 mm",
    "ureter_fat_mm": "our estimate: the ureter runs in retroperitoneal / extraperitoneal fat",
    "ureter_lumen_hu": "our estimate: urine on CT without intravenous contrast is water-like",
    "ureter_suv": "our estimate: little urine activity between peristaltic boluses",
    "ureter_focus_probability": f"focal ureteric urine activity: {_PHYSIOLOGICAL}; share our estimate",
    "ureter_foci": f"our estimate (focal ureteric activity: {KOSTAKOGLU_2004})",
    "ureter_focus_length_mm": "our estimate: length of a urine bolus",
    "ureter_focus_suv": "our estimate: urine activity of the order of the bladder's, before the PSF",
    # registration, patient, tissue tables
    "misregistration_shift_mm": "our estimate: patient motion between the CT and the PET of one study",
    "misregistration_rotation_deg": "our estimate: patient motion between the CT and the PET of one study",
    "weight_kg": "our estimate: adult women",
    "injected_dose_mbq_per_kg": "our estimate: a usual weight-based FDG activity",
    "uptake_time_min": "our estimate: around the usual 60 min uptake",
    "hu": "standard CT numbers for air, fat, water and soft tissue; bone, contrast and couch our estimate",
    "suv": f"physiological background uptake per tissue: {_PHYSIOLOGICAL}; values our estimate",
}


#: One source string per key of ``phantom.pelvis_real_anatomy`` (its other values are
#: ``phantom.pelvis``'s, sourced above).
HYBRID_PELVIS_PARAMETER_SOURCES: dict[str, str] = {
    "based_on": "design choice: every value not set for the hybrid is the pelvic phantom's",
    "real_data": f"a real abdomen-and-pelvis CT with its structures: {WASSERTHAL_2023}",
    "seed": "design choice: fixed so the cohort is reproducible",
    "n_patients": "design choice: lesion draws per real anatomy (runtime budget)",
    "crop_structures": "design choice: the pelvis from the iliac crests to below the bladder",
    "crop_margin_mm": "design choice: a few slices beyond the pelvic bones and bladder",
    "hu_tissues": "standard CT number ranges of air, fat, soft tissue and bone; bounds our estimate",
    "tissue_structures": f"the real structures' own labels: {WASSERTHAL_2023}; grouping ours",
    "organ_suv": f"physiological uptake of organs the phantom lacks (liver and blood pool as the PERCIST "
                 f"reference regions: {WAHL_2009}; urinary activity in the kidneys: {KOSTAKOGLU_2004}); "
                 "ranges our estimate",
    "primary_beside": "our estimate: the bladder base, where a cervical tumour meets the bladder "
                      "(the real anatomy is male: the site, not the organ, is modelled)",
    "node_beside": f"pelvic nodes lie along the iliac vessels: {GRIGSBY_2001}",
    "node_tissues": "design choice: a node displaces fat or soft tissue, never bone, vessel or organ",
    "node_gap_mm": "our estimate: a node beside, not inside, the vessel wall",
    "pet_margin_voxels": "design choice: the PET field of view is wider than the CT's",
    # keys of a hybrid on another real CT (a fork's cohort); the pelvic one leaves them at their defaults
    "sex": "the real patient's sex as its source states it (O: not stated)",
    "region": "design choice: the body region the CT series description names",
    "primary_within": "design choice: the activity classes a primary grows in (e.g. aerated lung for a lung tumour)",
    "primary_within_fraction": "our estimate: most of a primary in its tissue, the vessels it meets allowed",
    "primary_hu_tissue": "design choice: the phantom tissue whose CT number a primary starts from",
}

#: One source string per key of ``phantom.lung_real_delineations`` (the scanner's values are
#: those of the section it is ``based_on``).
HYBRID_DELINEATIONS_PARAMETER_SOURCES: dict[str, str] = {
    "based_on": "design choice: the scanner (PET grid, PSF, counting noise, misregistration, dose, uptake "
                "time, weight) is the pelvic phantom's",
    "real_data": f"real CT scans with real tumour delineations, the test cases of {GRIETHUYSEN_2017}",
    "cases": "design choice: every real scan with a delineation in the source",
    "seed": "design choice: fixed so the cohort is reproducible",
    "label": "design choice: the study's label id of the delineated tumour (cohort label_names)",
    "hu_tissues": "standard CT number ranges of air, aerated lung, fat, soft tissue and bone; bounds our estimate",
    "tissue_suv": f"physiological uptake by tissue (soft tissue of the chest as the mediastinal blood pool, "
                  f"a PERCIST reference region: {WAHL_2009}); ranges our estimate",
    "lesion_suvmax": "our estimate: FDG-avid primary tumours, above the classic SUVmax 2.5 cut-off",
    "pet_margin_voxels": "design choice: the PET field of view is wider than the CT's",
}

"""Part 2 (bone metastasis, claims C5-C7): the tables and figures of the step pages, one
module per group of pages, so that a page depends only on the code it shows."""

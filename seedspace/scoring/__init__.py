"""Scoring generated images: the fixed judge (the testbed classifier, its feature space and real reference
images) and the metrics (KID, Fréchet distance, precision / recall, density / coverage, diversity, bootstrap
intervals) that the evaluation, calibration and SeedSelect reports share."""

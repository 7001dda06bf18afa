"""Applications built on the seed-space geometry (SeedSelect: rare-concept generation) and their metrics."""

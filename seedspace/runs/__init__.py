"""Run folders: the one home of what every command writes and resumes.

``record`` (``run.json``: parameters, status, finished frames; the folder's lock; ``run.log``), ``records`` (the
typed parameters of each command, checked when read back), ``provenance`` (model and frame metadata),
``frames`` (frame plans of interpolate, centroid and travel) and ``writers`` (the commands' writers: frames,
norms, inversions, clusters). The command line and the explorer call these; augment and SeedSelect keep their
records with :class:`RunRecord` too.
"""

from .record import LOCK_NAME, LOG_NAME, RunRecord, open_run, read_record, read_run

__all__ = ["LOCK_NAME", "LOG_NAME", "RunRecord", "open_run", "read_record", "read_run"]

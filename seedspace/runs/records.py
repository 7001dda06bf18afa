"""Validation of recorded runs: the ``parameters`` of a run.json (read back by ``--resume``) and the record in a
PNG's ``parameters`` text (read back by ``regenerate``) are rebuilt as the command's settings
(:mod:`seedspace.runs.run_settings`) before they are used, so that a hand-edited or damaged record fails with one
line naming the file and the key."""

from __future__ import annotations

from ..checks import RecordError, check_int
from .run_settings import FRAME_SETTINGS, RUN_SETTINGS

__all__ = ["RecordError", "check_frame_record", "check_run_parameters"]


def check_run_parameters(command: str, params, source: str, commands: dict = RUN_SETTINGS) -> dict:
    """``params`` of a recorded ``command`` run in their one form (the record of the settings they describe);
    RecordError naming ``source`` and the key otherwise, or when ``command`` is not one of ``commands`` (name ->
    settings class; default: every command that records its settings)."""
    if command not in commands:
        raise RecordError(f"{source}: cannot use a record of command {command!r}")
    try:
        return commands[command].from_record(params).to_record()
    except ValueError as exc:
        raise RecordError(f"{source}: malformed record: {exc}") from None
    except TypeError as exc:  # a required setting missing from the record
        missing = str(exc).rpartition(": ")[2]
        raise RecordError(f"{source}: malformed record: missing key {missing}") from None


def check_frame_record(record, source: str) -> dict:
    """A frame PNG's seedspace record (``{"command", "params", "frame": {"index", ...}}``) of a frame command
    (interpolate, centroid, travel) with its params checked as :func:`check_run_parameters` does, and a
    non-negative integer frame index."""
    if not isinstance(record, dict):
        raise RecordError(f"{source}: malformed record: expected an object, got {type(record).__name__}")
    frame = record.get("frame")
    if not isinstance(frame, dict) or "index" not in frame:
        raise RecordError(f"{source}: the parameters record has no frame to regenerate")
    try:
        check_int(frame["index"], "frame index", 0)
    except ValueError as exc:
        raise RecordError(f"{source}: malformed record: {exc}") from None
    return {**record, "params": check_run_parameters(record.get("command"), record.get("params"), source,
                                                     FRAME_SETTINGS)}

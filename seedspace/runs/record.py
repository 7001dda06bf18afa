"""The ``run.json`` record of a run: parameters, model, finished frames and files, and its status; the run
folder's lock; opening a new run or reopening one to resume it; and ``run.log``, where the wall-clock times go (so that run.json holds only what the inputs
determine, and a resumed run ends with the same bytes as an uninterrupted one)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from pathlib import Path
from typing import Sequence

import torch
from filelock import FileLock, Timeout
from safetensors.torch import load_file

from .._version import __version__
from ..hardware import cpu_has_native_bf16, cpu_model
from ..outputs.files import PARTIAL_MARK, new_run_dir, read_json_object, write_text
from .records import RecordError, check_run_parameters

LOCK_NAME = ".lock"
LOG_NAME = "run.log"


def machine() -> str:
    """The CPU, whether it computes bf16 natively, torch and its threads, for run.log: what can change a run's
    floating-point rounding (run.json holds only what the inputs decide, the dtype that ran included)."""
    import torch  # already loaded by every command that writes a run

    return (f"{cpu_model()} (native bf16: {'yes' if cpu_has_native_bf16() else 'no'}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


class RunRecord:
    """The ``run.json`` of a run: parameters, model, inputs, one entry per finished frame, and a status
    (``running`` -> ``completed`` | ``interrupted`` | ``failed``). Rewritten atomically (keys sorted) on every
    update; the record holds the folder's lock from creation to :meth:`finish`, so two processes never work in
    the same run folder."""

    def __init__(self, folder: Path, command: str, parameters: dict, **extra):
        self.folder = Path(folder)
        self.path = self.folder / "run.json"
        self._lock = _acquire(self.folder)
        self.data = {"command": command, "status": "running", "seedspace_version": __version__,
                     "parameters": parameters, **extra, "frames": [], "files": []}
        self.log(f"started on {machine()}")
        self.write()

    @classmethod
    def resume(cls, folder: Path) -> "RunRecord":
        """Reopen a run's record to continue it: take its lock, remove the temporary files a killed process
        left, keep its finished frames, and set its status to ``running`` again."""
        self = cls.__new__(cls)
        self.folder = Path(folder)
        self.path = self.folder / "run.json"
        self._lock = _acquire(self.folder)
        for leftover in self.folder.rglob(f"*{PARTIAL_MARK}*"):
            leftover.unlink()
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            self._lock.release()
            raise ValueError(f"cannot read {self.path}: {exc}") from None
        if not isinstance(self.data, dict) or not isinstance(self.data.get("frames"), list):
            self._lock.release()
            raise ValueError(f"{self.path} is not a seedspace run record")
        self.data["status"] = "running"
        self.data.pop("error", None)
        self.data["files"] = []
        self.log(f"resumed on {machine()}")
        self.write()
        return self

    def finished_frames(self) -> set[int]:
        """Indices of the frames recorded as finished whose files still exist."""
        return {f["index"] for f in self.data["frames"]
                if isinstance(f, dict) and isinstance(f.get("file"), str) and (self.folder / f["file"]).is_file()}

    def __setitem__(self, key, value):
        self.data[key] = value

    def write(self) -> None:
        write_text(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")

    def log(self, event: str) -> None:
        """Append a time-stamped line to run.log (wall-clock times stay out of run.json)."""
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with open(self.folder / LOG_NAME, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {event}\n")

    def add_frames(self, frames: Sequence[dict]) -> None:
        self.data["frames"].extend(frames)
        self.write()

    def add_file(self, path: Path) -> None:
        self.data["files"].append(str(Path(path).relative_to(self.folder)))

    def finish(self, status: str, error: str | None = None) -> None:
        """Write the final status (and error), log it, and release the folder's lock."""
        self.data["status"] = status
        if error:
            self.data["error"] = error
        try:
            self.write()
            self.log(status)
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def guard(self):
        """Finalise as completed; on Ctrl-C / SIGTERM mark the run interrupted (finished frames stay), on any
        other exception failed; then re-raise."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted")
            raise
        except BaseException as exc:
            self.finish("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.finish("completed")


def read_record(folder: str | Path, command: str) -> dict:
    """The run.json of the ``command`` run in ``folder``, as an object; ValueError (naming the file) when there is
    none, it cannot be read or holds no object, or it is another command's run."""
    folder = Path(folder).expanduser()
    run_json = folder / "run.json"
    if not run_json.is_file():
        raise ValueError(f"{folder} is not a seedspace run folder (no run.json)")
    old = read_json_object(run_json)
    if old.get("command") != command:
        raise ValueError(f"{folder} is a `{old.get('command')}` run, not a `{command}` run")
    return old


def read_run(folder: str | Path, command: str) -> dict:
    """The checked parameters of the ``command`` run in ``folder``, to resume it; ValueError (naming the file and
    the key) when it is no such run or its record is malformed."""
    old = read_record(folder, command)
    run_json = Path(folder).expanduser() / "run.json"
    frames = old.get("frames", [])
    if not isinstance(frames, list) or not all(
            isinstance(f, dict) and isinstance(f.get("index"), int) and isinstance(f.get("file"), str) for f in frames):
        raise RecordError(f"{run_json}: malformed record: 'frames' must list objects with an 'index' and a 'file'")
    return dict(check_run_parameters(command, old.get("parameters"), str(run_json)))


def open_run(command: str, params: dict, out=None, base="outputs", resume=None, seed_files: dict | None = None,
             **extra) -> tuple[Path, "RunRecord"]:
    """(folder, record) of a run: a new folder (``out``, or the next ``<base>/<command>-NNNNN``) with a fresh
    record, or the folder ``resume`` reopened, after checking that the seed files it already holds
    (``seed_files``: name -> {key: tensor}) hold the seeds planned now (else its inputs changed and its frames
    would not match). ``extra``: further top-level keys of a new record."""
    if resume is None:
        with new_run_dir(command, out, base) as folder:
            return folder, RunRecord(folder, command, params, model=params["model"], **extra)
    resume = Path(resume).expanduser()
    for name, tensors in (seed_files or {}).items():
        path = resume / name
        if path.is_file() and not torch.equal(load_file(str(path))["seeds"], tensors["seeds"].float().contiguous()):
            raise ValueError(f"cannot resume {resume}: its inputs changed (the planned seeds differ from {name})")
    return resume, RunRecord.resume(resume)


@contextlib.contextmanager
def folder_lock(folder: str | Path):
    """Hold ``folder``'s lock (``.lock``) over the block: ValueError at once when another seedspace process holds
    it. The same lock a :class:`RunRecord` holds, for writers that keep their own files (SeedSelect's steps)."""
    lock = _acquire(Path(folder))
    try:
        yield
    finally:
        lock.release()


def _acquire(folder: Path) -> FileLock:
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ValueError(f"run folder {folder} is in use by another seedspace process") from None
    return lock

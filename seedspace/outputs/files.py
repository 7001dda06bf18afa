"""Run folders, atomic file writes, canonical JSON and file hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Iterator

import numpy as np


def check_out_available(out: str | Path | None) -> None:
    """Fail early (before any slow work) when ``--out`` names something that already exists (a dangling
    symbolic link included)."""
    if out is not None and (Path(out).exists() or Path(out).is_symlink()):
        raise FileExistsError(f"output folder {out} already exists; choose another --out or remove it")


def allocate_run_dir(command: str, out: str | Path | None = None, base: str | Path = "outputs") -> Path:
    """``--out`` (must not exist) or the next free ``<base>/<command>-NNNNN`` folder, created empty."""
    if out is not None:
        out = Path(out)
        check_out_available(out)
        out.mkdir(parents=True)
        return out
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(command)}-(\d+)$")
    used = [int(m.group(1)) for p in base.iterdir() if (m := pattern.match(p.name))]
    index = max(used, default=0) + 1
    while True:
        folder = base / f"{command}-{index:05d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # another process took it
            index += 1


@contextlib.contextmanager
def new_run_dir(command: str, out: str | Path | None = None, base: str | Path = "outputs") -> Iterator[Path]:
    """:func:`allocate_run_dir` for the block; when the block fails (Ctrl-C included) before writing anything into
    the folder, the folder is removed again, so a failed command leaves no empty run folder behind."""
    folder = allocate_run_dir(command, out, base)
    try:
        yield folder
    except BaseException:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds while the folder is empty
        raise


PARTIAL_MARK = ".partial"


def _umask() -> int:
    """The process's umask (os.umask can only be read by setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> None:
    """Give ``path`` (a file, or every file under a folder) the mode a new file gets under the process's umask:
    writers that go through a temporary file (mkstemp, some libraries' savers) leave 0600."""
    path = Path(path)
    mode = 0o666 & ~_umask()
    for file in ([path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]):
        os.chmod(file, mode)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path`` (same extension, ``.partial`` in its name); rename it to
    ``path`` when the block succeeds, remove it when the block fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # the name is known before the file exists (tempfile.mkstemp would tell it only after making the file):
        # a Ctrl-C or SIGTERM at any moment then finds it in `tmp`, and the finally block removes it
        while True:
            tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}{PARTIAL_MARK}{path.suffix}")
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                break
            except FileExistsError:
                continue
        yield tmp
        follow_umask(tmp)  # made 0600 as mkstemp does; the finished file follows the umask like any other
        os.replace(tmp, path)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON atomically (numpy scalars, arrays and paths are converted)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(data) -> str:
    """Compact, key-sorted JSON: the same parameters always give the same bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=True)


def read_json_object(path: str | Path) -> dict:
    """A JSON file that must hold an object (a record or a config); ValueError naming the file when it cannot
    be read, is not JSON, or holds something else (a list, a string)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not a {type(data).__name__}")
    return data


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()

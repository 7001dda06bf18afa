"""What the page's input fields become: seed items (as :func:`seedspace.parse_seed_spec` gives them) from typed
seeds and uploaded files. Uploads are kept in the runs folder under their SHA-256, so the paths that run folders
record stay valid after the server's upload cache is emptied (``seedspace regenerate`` reads them again)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import outputs
from ..seeds import parse_seed_spec

UPLOADS = "uploads"  # the folder under the runs folder that keeps uploaded files
SEED_FILE_SUFFIX = ".safetensors"


def typed_items(text: str | None, what: str) -> list[dict]:
    """Seed items from a typed comma list of seed integers and weighted blends of them (``11,42`` or
    ``1111:0.2|2222:0.8``); an empty field gives none. Paths are refused: files come in as uploads (a page served
    to others must not read the server's files)."""
    if text is None or not text.strip():
        return []
    items = parse_seed_spec(text, what)
    if any(_names_file(item) for item in items):
        raise ValueError(f"{what}: type seed integers or blends of them (e.g. 11 or 1111:0.2|2222:0.8); "
                         "upload images and seed files instead of typing paths")
    return items


def _names_file(item: dict) -> bool:
    if "blend" in item:
        return any(_names_file(part) for part in item["blend"])
    return "int" not in item


def upload_items(paths, model, runs_dir: Path, what: str) -> list[dict]:
    """Seed items from uploaded files (images, which are inverted later, or ``.safetensors`` seed files), each
    copied to ``<runs_dir>/uploads/<sha>/<name>``. An image that the model cannot read is refused here, naming the
    file as it was uploaded."""
    items = []
    for path in [p for p in (paths or []) if p]:
        path = Path(path)
        if path.suffix.lower() not in (*outputs.IMAGE_SUFFIXES, SEED_FILE_SUFFIX):
            raise ValueError(f"{what}: {path.name} is neither an image ({', '.join(outputs.IMAGE_SUFFIXES)}) nor a "
                             f"{SEED_FILE_SUFFIX} seed file")
        if path.suffix.lower() != SEED_FILE_SUFFIX:
            try:
                model.load_images([path])
            except ValueError:
                raise ValueError(f"{what}: {path.name} is not a readable image") from None
        items.extend(parse_seed_spec([str(keep_upload(path, runs_dir))], what, blends=False))
    return items


def keep_upload(path: Path, runs_dir: Path) -> Path:
    """``path`` copied (atomically) to ``<runs_dir>/uploads/<first 16 hex digits of its SHA-256>/<its name>``."""
    kept = Path(runs_dir) / UPLOADS / outputs.file_sha256(path)[:16] / Path(path).name
    if not kept.is_file():
        with outputs.atomic_path(kept) as tmp:
            shutil.copyfile(path, tmp)
    return kept.resolve()


def one_item(text: str | None, upload: str | None, model, runs_dir: Path, what: str) -> dict:
    """Exactly one seed item from a typed seed (or blend) or an uploaded file; the upload wins when both are
    given."""
    items = upload_items([upload], model, runs_dir, what) if upload else typed_items(text, what)
    if len(items) != 1:
        raise ValueError(f"{what}: give one seed integer, one blend or one uploaded file"
                         + (f" (got {len(items)})" if items else ""))
    return items[0]

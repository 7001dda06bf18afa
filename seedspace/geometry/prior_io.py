"""Priors from their records and specs: ``"chi"``, ``"scaled-chi:S"``, a prior JSON file, a record or a prior."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .prior import ChiPrior, NormPrior

PRIOR_FAMILIES = ("chi", "scaled-chi", "generalized-chi")
MAX_PRIOR_FILE_BYTES = 256 * 1024  # a prior record with its calibration notes is a few kB; it travels in every PNG


def prior_from_record(record: dict, d: int | None = None) -> NormPrior:
    """The prior a :meth:`NormPrior.to_record` dict describes: ``{"family": "chi" | "scaled-chi" | "generalized-chi",
    "d": D, "scale": S, "dof": K}`` (extra keys such as ``info`` are kept as the prior's ``info``).
    ``d``: the seeds' dimension, which the record must match."""
    if not isinstance(record, dict):
        raise ValueError(f"a prior record must be a JSON object, got {type(record).__name__}")
    family = record.get("family")
    if family not in PRIOR_FAMILIES:
        raise ValueError(f"unknown prior family {family!r}; valid families: {', '.join(PRIOR_FAMILIES)}")
    rd = record.get("d", d)
    if rd is None:
        raise ValueError("the prior record has no dimension d (pass d=, or give the prior to a geometry function, "
                         "which takes d from the seeds)")
    if isinstance(rd, bool) or not isinstance(rd, int) or rd < 1:
        raise ValueError(f"the prior record's d must be a positive integer, got {rd!r}")
    if not isinstance(record.get("info") or {}, dict):
        raise ValueError(f"the prior record's info must be an object, got {record['info']!r}")
    if d is not None and rd != d:
        raise ValueError(f"the prior is for d={rd} but the seeds have d={d}")
    needed = {"chi": (), "scaled-chi": ("scale",), "generalized-chi": ("scale", "dof")}[family]
    missing = [k for k in needed if k not in record]
    if missing:
        raise ValueError(f"the {family} prior record lacks {', '.join(missing)}")
    values = [record[k] for k in needed]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        raise ValueError(f"the {family} prior's parameters must be finite numbers, got {dict(zip(needed, values))}")
    prior = ChiPrior(rd, *values)
    prior.info = dict(record.get("info") or {})
    return prior


def load_prior(spec=None, d: int | None = None) -> NormPrior:
    """A prior from ``spec``: None or ``"chi"`` (chi(d)), ``"scaled-chi:S"`` (``|x|/S ~ chi(d)``), the path of a
    prior JSON file (as written by ``seedspace calibrate``, or :func:`prior_json` text), a record dict, or a prior object.
    ``d`` (the seeds' dimension) is needed for the named families and checked against files, records and objects."""
    if spec is None or spec == "chi":
        if d is None:
            raise ValueError("the chi prior needs the dimension d")
        return ChiPrior(d)
    if isinstance(spec, NormPrior):
        if d is not None and spec.d != d:
            raise ValueError(f"the prior is for d={spec.d} but the seeds have d={d}")
        return spec
    if isinstance(spec, dict):
        return prior_from_record(spec, d)
    if not isinstance(spec, (str, Path)):
        raise ValueError(f"a prior must be 'chi', 'scaled-chi:S', a prior file, a record or a prior, got {spec!r}")
    text = str(spec)
    if text.startswith("scaled-chi:"):
        try:
            scale = float(text.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad prior {text!r}: expected scaled-chi:S with a number S, e.g. scaled-chi:0.93") from None
        return prior_from_record({"family": "scaled-chi", "d": d, "scale": scale}, d)
    path = Path(text).expanduser()
    if not path.is_file():  # a folder, a pipe (reading it would block) or a broken link is no prior file either
        what = "is not a regular file" if os.path.lexists(path) else "does not exist"
        raise ValueError(f"unknown prior {text!r}: use chi, scaled-chi:S or the path of a prior JSON file ({path} "
                         f"{what})")
    if path.stat().st_size > MAX_PRIOR_FILE_BYTES:
        raise ValueError(f"prior file {path} holds {path.stat().st_size} bytes, over {MAX_PRIOR_FILE_BYTES}: not a "
                         "prior record")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ValueError(f"prior file {path} is not valid JSON: {reason}") from None
    return prior_from_record(record, d)


def resolve_prior(prior, d: int) -> NormPrior:
    """``prior=`` of the geometry functions: None means chi(d); anything :func:`load_prior` takes."""
    return ChiPrior(d) if prior is None else load_prior(prior, d)


def prior_json(prior: NormPrior) -> str:
    """The prior's record as indented JSON text (what a prior file holds)."""
    return json.dumps(prior.to_record(), indent=2, sort_keys=True) + "\n"

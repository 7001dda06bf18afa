"""Whether a model's calibrated norm prior fits a run, and what NAO uses when it does not.

``seedspace calibrate`` measures a prior at one sampler and step count (``info["calibration"]``: ``steps``,
``scheduler``, and the seed shape of the model it ran on). Inverted seeds depend on both: the testbed's images
inverted with 50 DDIM steps sit near 0.93 sqrt(d), with 10 steps near 0.8 sqrt(d). A prior whose mode lies above
both endpoints of a path pulls the NAO path away from them, as chi(d) does; so the model's prior is used only where
the run's settings are the calibration's, and elsewhere a scaled chi fitted to the run's own seeds (their norms'
maximum-likelihood scale, :func:`seedspace.geometry.fit_prior`) takes its place, said in one line.

    prior, note = run_prior_of("model", model, steps=10, scheduler="ddim", seeds=endpoints)

Also the one normaliser of ``prior=`` specs (:func:`prior_record`): how every run records a prior, chi included.
"""

from __future__ import annotations

import math
import os

from ..outputs.files import read_json_object


def model_prior(model):
    """The norm prior NAO should use with ``model``: its own (``model.prior``: a testbed folder's calibrated
    ``prior.json``) where it has one, else chi(d), the paper's."""
    from ..geometry import ChiPrior

    own = getattr(model, "prior", None)
    return own if own is not None else ChiPrior(math.prod(model.seed_shape))


def prior_record(spec, model) -> dict | None:
    """The record of a ``prior=`` spec for ``model``'s seed dimension, or None for chi(d), the default that
    records leave out (so that records made before priors existed stay valid). A spec is None or 'chi', 'model'
    (the model's own prior; chi where it has none), 'scaled-chi:S', a prior file, a record or a prior object."""
    from ..geometry import load_prior

    if isinstance(spec, str) and spec == "model":
        own = getattr(model, "prior", None)
        spec = None if own is None else own.to_record()
    if spec is None or isinstance(spec, str) and spec == "chi":
        return None
    d = math.prod(model.seed_shape)
    record = load_prior(spec, d).to_record()
    return None if record == {"family": "chi", "d": d} else record


def calibrated_settings(record: dict, model) -> dict:
    """The settings a prior record was calibrated at: ``steps``, ``scheduler`` (a record without one: the model's
    default sampler, the one calibrate always used) and ``d``; {} for a prior with no calibration record."""
    calibration = (record.get("info") or {}).get("calibration")
    if not isinstance(calibration, dict):
        return {}
    settings = {"d": record.get("d")}
    if isinstance(calibration.get("steps"), int):
        settings["steps"] = calibration["steps"]
    settings["scheduler"] = calibration.get("scheduler") or getattr(model, "default_scheduler", None)
    return settings


def prior_mismatch(record: dict, model, steps: int, scheduler: str | None, inverts: bool = True) -> str | None:
    """Why the prior ``record`` does not fit a run of ``model`` at ``steps`` with ``scheduler`` (None: the model's
    default), or None when it fits (or records no settings to compare). The seed dimension must be the run's;
    steps and sampler must be the run's where it ``inverts`` images (seeds drawn from integers do not depend on
    them)."""
    d = math.prod(model.seed_shape)
    if record.get("d") not in (None, d):
        return f"is for seeds of dimension {record['d']}, this run's have {d} (another image size)"
    settings = calibrated_settings(record, model)
    if not settings or not inverts:
        return None
    scheduler = scheduler or getattr(model, "default_scheduler", None)
    if "steps" in settings and settings["steps"] != steps or settings["scheduler"] != scheduler:
        return (f"was calibrated at {settings.get('steps', '?')} {settings['scheduler']} steps, this run uses {steps} "
                f"{scheduler} steps")
    return None


def model_prior_record(model) -> dict | None:
    """The model's own prior as its file records it (no dimension check: :func:`prior_mismatch` says when the
    dimension differs), or None when it has none."""
    path = getattr(model, "prior_path", None)
    if path is None:
        return None
    if not os.path.lexists(path):
        return None
    return read_json_object(path)  # a malformed file: ValueError naming it, never a silent chi


def no_prior_note(model) -> str:
    """The line that says ``--prior model`` falls back to chi(d) for a model that carries no prior."""
    return (f"{getattr(model, 'name', 'this model')} carries no norm prior; NAO uses chi(d), the paper's "
            "(`seedspace calibrate --out model` makes one)")


def fitted_prior(seeds):
    """A scaled chi fitted to ``seeds`` (N >= 2, N, *seed_shape) by maximum likelihood, its ``info`` saying so."""
    from ..geometry import fit_prior

    prior = fit_prior(seeds.double(), "scaled-chi")
    prior.info = {**prior.info, "fitted_to": "the run's own seeds (the model's prior does not fit the run)"}
    return prior


def _fitted_instead(reason: str, steps: int, seeds):
    """(record, note) of the scaled chi fitted to ``seeds`` that stands in for a model prior that does not fit the
    run (``reason``: why); ValueError without at least two seeds."""
    if seeds is None or seeds.shape[0] < 2:
        raise ValueError(f"the model's prior {reason}; give --prior chi, scaled-chi:S or a prior file, or "
                         f"calibrate at these settings (`seedspace calibrate --steps {steps}`)")
    prior = fitted_prior(seeds)
    note = (f"the model's prior {reason}: NAO uses a scaled chi fitted to the {seeds.shape[0]} seeds' own norms "
            f"(scale {prior.scale:.4f}) instead")
    return prior.to_record(), note


def run_prior_of(spec, model, steps: int, scheduler: str | None, inverts: bool = True, seeds=None):
    """(prior record or None for chi(d), note or None) of a run's ``prior=`` spec as ``--prior`` takes it, in a run
    of ``model`` at ``steps`` with ``scheduler`` (``inverts``: whether it inverts images). Any spec but 'model' is
    :func:`prior_record`. 'model' is the model's own prior where its calibration settings are the run's
    (:func:`prior_mismatch`); else a scaled chi fitted to ``seeds`` (the run's seeds, at least two, or a callable
    giving them, called only then), with the one-line note that says why, and ValueError without seeds; chi(d) with
    a note for a model that carries no prior."""
    if not (isinstance(spec, str) and spec == "model"):
        return prior_record(spec, model), None
    own = model_prior_record(model)
    if own is None:
        return None, no_prior_note(model)
    reason = prior_mismatch(own, model, steps, scheduler, inverts)
    if reason is None:
        return model.prior.to_record(), None
    return _fitted_instead(reason, steps, seeds() if callable(seeds) else seeds)

"""Experiment 8 (opt-in, ``--experiments priors``), does a model-aware prior fix NAO?

The claims run finds DDIM inversions of real images sitting below the chi shell (about 0.93 sqrt(d) on the testbed),
where the model renders them well, and NAO's chi(d) prior pulling paths and centroids out to about 1.0 sqrt(d),
where images are worse. This experiment reruns NAO on the *same* endpoint pairs and input sets as the
interpolation and centroid experiments (their helpers, so the same inversions and draws, and cached images are
shared when they run in the same evaluation) under three priors, next to the baselines:

- ``nao-chi``: the paper's chi(d) prior;
- ``nao-fit``: :func:`seedspace.geometry.fit_prior` (family ``priors.fit``) fitted to all inversions in play, pooled
  over the classes (one prior per model, as a calibrated prior is; see :func:`fit_inversions`);
- ``nao-file``: a prior read from ``priors.file`` (``--prior-file``, e.g. written by ``seedspace calibrate``), else
  the model's own calibrated prior (``model.prior``); skipped with a note when there is neither;
- interpolation: ``slerp`` and ``cog``; centroids: ``normalized`` (the mean rescaled to the chi mode) and ``cog``.

Tables: the priors themselves against the inversions' norms; the interpolation metrics per arm; the centroid and
centroid-path metrics per k and arm; paired bootstrap differences of nao-fit (and nao-file) minus the baselines
and minus nao-chi over the same paths / input sets.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from .. import geometry
from .centroid import CENTROID_TABLE_METRICS, PATH_TABLE_METRICS, centroid_inputs, centroid_rows, score_centroids
from .experiment import row, section
from .interpolation import arm_paths, endpoints, path_examples, path_table, score_paths
from .paired import MIN_PAIRED_ITEMS, paired_rows
from .runner import Runner

log = logging.getLogger(__name__)

NAO_ARMS = ("nao-chi", "nao-fit", "nao-file")  # NAO under: chi(d), the fitted prior, the prior file
INTERPOLATION_ARMS = NAO_ARMS + ("slerp", "cog")
CENTROID_ARMS = NAO_ARMS + ("normalized", "cog")
# (a, b) of the paired differences a − b; comparisons with an arm that did not run are left out
COMPARISONS = {
    "interpolation": (("nao-fit", "slerp"), ("nao-fit", "cog"), ("nao-fit", "nao-chi"),
                      ("nao-file", "slerp"), ("nao-file", "nao-chi")),
    "centroid": (("nao-fit", "normalized"), ("nao-fit", "cog"), ("nao-fit", "nao-chi"),
                 ("nao-file", "normalized"), ("nao-file", "nao-chi")),
}
PAIRED_METRICS = {"interpolation": ["acc", "conf", "fid", "kid", "norm_mean"],
                  "centroid": ["acc", "conf", "p_acc", "fid", "kid", "norm"]}


def check_priors_config(config, d: int) -> None:
    """ValueError unless ``priors.file`` (when given) loads as a prior for dimension ``d``: checked before any image
    is generated (the settings checked the rest when they were made)."""
    spec = config.priors.file
    if spec is not None:
        if spec != "chi" and not spec.startswith("scaled-chi:") and not Path(spec).expanduser().is_file():
            raise ValueError(f"prior file {spec}: no such file (a prior JSON file, or scaled-chi:S)")
        try:
            geometry.load_prior(spec, d)
        except ValueError as exc:
            raise ValueError(f"prior file {spec}: {exc}") from None


def fit_inversions(inv: dict, family: str):
    """The prior fitted by maximum likelihood to every class's inversions pooled (``geometry.fit_prior``; for
    scaled-chi ``s^2 = mean |x|^2 / d``). Pooled rather than per class: a prior describes the model (like a
    calibrated one, against which it is compared), and 10x more norms make its scale all but noise-free.
    Raises ValueError when no valid prior fits (e.g. norms so small that the density would exceed 1)."""
    return geometry.fit_prior(torch.cat([seeds for seeds, _ in inv.values()]), family=family)


def _exact(value: float, n: int = 1) -> dict:
    """A stat without an interval (lo = hi = mean): an exact number, or one not worth a CI."""
    return {"mean": float(value), "lo": float(value), "hi": float(value), "n": int(n)}


def _prior_row(name: str, prior: dict, description: str) -> dict:
    """A row of the priors table: the prior's mode, mean and sd of the norm over sqrt(d) (n: the norms it was
    fitted to, when its record says), from :func:`_prior_numbers`."""
    return row({"prior": name, "what": description}, {key: _exact(prior[key], prior["n"])
                                                      for key in ("prior_mode", "prior_mean", "prior_sd")})


def _prior_numbers(prior, d: int) -> dict:
    n = (getattr(prior, "info", None) or {}).get("n")
    sd = math.sqrt(d)
    return {"prior_mode": prior.mode / sd, "prior_mean": prior.mean / sd, "prior_sd": prior.std / sd,
            "n": n if isinstance(n, int) and n >= 1 else 1, "described": _describe(prior), "record": prior.to_record()}


def _describe(prior) -> str:
    text = prior.family
    if prior.family != "chi":
        text += f", s = {prior.scale:.4g}"
    if prior.family == "generalized-chi":
        text += f", k = {prior.dof:.4g}"
    return text


def measure_priors(runner: Runner) -> dict:
    """The priors (chi, fitted to the inversions, the file's or the model's), the inversions' norms, and every
    arm's paths and centroids generated and scored: per-item scores and judge features, the example grid."""
    cfg, d, notes = runner.cfg, runner.d, []
    T = cfg.interpolation.points
    # the centroid inversions first (the larger set), then the interpolation pairs take the first of them from the cache
    classes, inv, sets = centroid_inputs(runner, notes, cfg.priors.centroid_sets)
    _, _, pairs, A, B = endpoints(runner, notes)
    chi = geometry.ChiPrior(d)
    priors = {"nao-chi": chi}
    try:
        priors["nao-fit"] = fit_inversions(inv, cfg.priors.fit)
    except ValueError as exc:
        notes.append(f"nao-fit not run: no valid {cfg.priors.fit} prior fits these inversions ({exc}).")
    own = getattr(runner.model, "prior", None)
    source = ""
    if cfg.priors.file is not None:
        priors["nao-file"], source = geometry.load_prior(str(cfg.priors.file), d), f"from {cfg.priors.file}"
    elif own is not None:
        priors["nao-file"], source = own, "the model's own (prior.json in its folder)"
    else:
        notes.append("nao-file not run: no --prior-file given and the model carries no prior (a calibrated "
                     "prior, e.g. from `seedspace calibrate`).")
    iarms = {a: ("nao" if a in NAO_ARMS else a, priors.get(a), list(range(len(pairs))))
             for a in INTERPOLATION_ARMS if a not in NAO_ARMS or a in priors}
    log.info(f"priors: {len(pairs)} paths x {len(iarms)} arms")
    paths, times = arm_paths(A, B, T, iarms)
    scored, items, feats = score_paths(runner, pairs, A, B, paths, iarms, times)
    carms = {a: ("nao" if a in NAO_ARMS else a, priors.get(a, chi), None)
             for a in CENTROID_ARMS if a not in NAO_ARMS or a in priors}
    log.info(f"priors: {len(sets)} centroid input sets x {len(carms)} arms")
    _, citems, cfeats, pfeats, _ = score_centroids(runner, inv, sets, carms, cfg.priors.path_inputs)
    return {"classes": classes, "priors": {a: _prior_numbers(p, d) for a, p in priors.items()}, "source": source,
            "norms": runner.norms(torch.cat([seeds for seeds, _ in inv.values()])),
            "class_norms": {str(c): runner.norms(inv[c][0]) for c in classes}, "notes": notes,
            "interpolation": {"pairs": len(pairs), "times": times, "items": items, "feats": feats},
            "centroid": {"ks": sorted({k for _, k, _, _ in sets}), "items": citems, "feats": cfeats,
                         "path_feats": pfeats},
            "examples": path_examples(scored, paths, iarms, T)}


def tabulate_priors(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_priors`'s measurements."""
    cfg = runner.cfg
    T = cfg.interpolation.points
    sec = section("Does a model-aware prior fix NAO?", (
        "NAO under three norm priors on the same endpoint pairs and centroid input sets as the Interpolation and "
        "Centroids experiments: nao-chi (the paper's chi(d)), nao-fit (the maximum-likelihood "
        f"{cfg.priors.fit} prior of all inversions in play, pooled over classes: a prior describes the model, like "
        "the calibrated one, and the pooled fit's scale is all but noise-free; it is in-sample, since it is fitted "
        "to the very inversions whose paths are scored), nao-file (a calibrated prior: --prior-file, else the model's own), next to "
        "SLERP and COG (interpolation) and the normalized mean and COG (centroids). "
        f"Interpolation: {T} interior frames per path; centroids: the centroid and the interior points of the paths "
        f"from it to its first {cfg.priors.path_inputs} input(s), which are NAO paths under the arm's prior (chi for "
        f"normalized and cog, as in the Centroids experiment), on the first {cfg.priors.centroid_sets} of that "
        "experiment's input sets per class and k."))
    sec["notes"] += measured["notes"]
    priors, norms, classes = measured["priors"], measured["norms"], measured["classes"]
    sec["priors"] = {arm: p["record"] for arm, p in priors.items()}

    # the priors against the data
    rows = [row({"prior": "inversions", "what": f"{norms.size} inverted few-shot images ({len(classes)} classes)"},
                {"prior_mean": runner.stat(norms, "priors", "inversion-norms"),
                 "prior_sd": _exact(norms.std(ddof=1), norms.size)})]
    what = {"nao-chi": "the paper's prior", "nao-fit": f"ML fit to the {norms.size} inversions",
            "nao-file": measured["source"]}
    rows += [_prior_row(arm, p, f"{p['described']}: {what[arm]}") for arm, p in priors.items()]
    sec["tables"].append({"name": "priors", "title": "The priors (norm over √d) against the inversions' norms",
                          "metrics": ["prior_mode", "prior_mean", "prior_sd"], "rows": rows})
    rms = {int(c): float(np.sqrt(np.mean(n ** 2))) for c, n in measured["class_norms"].items()}
    lo, hi = min(rms, key=rms.get), max(rms, key=rms.get)
    sec["notes"].append(f"Per class, a scaled-chi fit would give s = rms norm/√d from {rms[lo]:.3f} (class {lo}) to "
                        f"{rms[hi]:.3f} (class {hi}); the pooled fit uses every class's inversions.")

    # interpolation
    interp = measured["interpolation"]
    items, feats, P = interp["items"], interp["feats"], interp["pairs"]
    iarms = {a: (None, None, list(range(P))) for a in items}
    label = {a: {"arm": a} for a in INTERPOLATION_ARMS + CENTROID_ARMS}
    sec["tables"].append(path_table(runner, items, feats, iarms, interp["times"], list(iarms), None,
                                    "priors_interpolation", f"Interpolation: {P} paths, {P * T} frames per arm", T,
                                    label))
    # centroids
    cen = measured["centroid"]
    citems, cfeats, pfeats, ks = cen["items"], cen["feats"], cen["path_feats"], cen["ks"]
    sec["tables"].append({"name": "priors_centroid", "title": "Centroid images (one per input set)",
                          "metrics": CENTROID_TABLE_METRICS,
                          "rows": centroid_rows(runner, citems, cfeats, pfeats, list(citems), ks, None,
                                                "priors_centroid", label)})
    sec["tables"].append({"name": "priors_centroid_paths", "title": "Images on the paths from the centroid to the "
                          "inputs", "metrics": PATH_TABLE_METRICS,
                          "rows": centroid_rows(runner, citems, cfeats, pfeats, list(citems), ks, None,
                                                "priors_centroid_paths", label)})

    # paired differences over the same paths / input sets
    found = {"interpolation": (items, feats), "centroid": (citems, cfeats)}
    paired = [r for exp, comps in COMPARISONS.items() for a, b in comps
              for r in paired_rows(runner, exp, *found[exp], a, b, PAIRED_METRICS[exp], tag="priors")]
    sec["tables"].append({"name": "priors_paired", "title": "Paired differences (a − b) over the same paths / input "
                          "sets", "kind": "paired", "metrics": ["diff"], "rows": paired})
    sec["items"] = {"interpolation": items, "centroid": citems}
    sec["notes"].append("Paired: bootstrap 95% CIs of the per-item difference (item = endpoint pair or input set; "
                        f"FID-style and KID resample items jointly); no verdict below {MIN_PAIRED_ITEMS} items.")
    sec["_examples"] = measured["examples"]
    return sec

#!/usr/bin/env python
"""Does NAO initialisation speed SeedSelect up? Measured on the tail (rare) classes of the testbed.

For each tail class and each initialisation (random, nao-centroid, nao-paths, cog-centroid), R runs, each with
its own few-shot subset of k real images of the class (and its own random seed for 'random'), optimise one
seed for S steps with SeedSelect; at every step 0..S record for each run's image

- judge accuracy (argmax of the judge classifier == the class) and judge confidence (probability of the class),
- the FID-style score: Fréchet distance between Gaussians of judge features of the R generated images and of
  all shipped real images of the class (per class, then averaged over classes),

and per initialisation the step (and wall time: initialisation + optimisation per run) at which the mean
accuracy first reaches 90%. All runs of one initialisation are optimised together in one batch (SeedSelect's
seeds are independent: the loss is a sum of per-seed losses and AdamW is element-wise); per-run times are the
batch times divided by the batch size.

Writes ``results.json``, ``report.md`` (means with 95% bootstrap CIs and n) and ``accuracy_vs_step.png``.

    python scripts/report_seedselect.py                    # the embedded testbed, defaults (~15 min, 2 cores)
    python scripts/report_seedselect.py --quick --model tests_tiny_testbed_folder --out /tmp/r
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedspace.scoring.judge import JUDGE_SIZE, resize_images  # noqa: E402
from seedspace.scoring.metrics import (FeatureReference, bootstrap_ci, group_frechet, group_kid,  # noqa: E402
                                    index_bootstrap_ci, paired_bootstrap_ci)
from seedspace.methods.seedselect import INIT_METHODS, SeedSelectSettings, seedselect  # noqa: E402
from seedspace.progress import progress_bars  # noqa: E402

TABLE_STEPS = (0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 25, 30)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="testbed-format folder (default: the embedded testbed)")
    p.add_argument("--out", default="outputs/seedselect_report", help="output folder")
    p.add_argument("--classes", type=int, nargs="*", default=None, help="classes (default: the tail classes)")
    p.add_argument("--inits", nargs="*", default=list(INIT_METHODS), choices=list(INIT_METHODS))
    p.add_argument("--runs", type=int, default=4, help="runs per class and initialisation (time scales linearly)")
    p.add_argument("--shots", type=int, default=5, help="reference images per run (k)")
    p.add_argument("--steps", type=int, default=30, help="SeedSelect optimisation steps")
    p.add_argument("--sampler-steps", type=int, default=20, help="DDIM steps inside the optimisation loop")
    p.add_argument("--inversion-steps", type=int, default=50,
                   help="DDIM inversion steps of the centroid inits (0: the model's default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--unconditional", action="store_true",
                   help="generate with the null class (guidance 1) instead of the class label: the tail classes are "
                        "then rare concepts of the model's unconditional distribution (the paper's regime)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--threshold", type=float, default=0.9, help="accuracy to reach")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (1 class, 2 runs, 3 steps)")
    args = p.parse_args(argv)
    if args.unconditional:
        args.guidance = 1.0
    if args.quick:
        args.runs, args.steps = min(args.runs, 2), min(args.steps, 3)
        args.sampler_steps = min(args.sampler_steps, 4)
    return args


def load(args):
    import seedspace as ss

    model = ss.load_model(args.model) if args.model else ss.load_model()
    if not model.has_judge:
        raise SystemExit(f"{args.model}: the report needs a testbed-format model (few-shot set and judge)")
    return model


def run_init(model, init, classes, real, args, judge_features):
    """All (class, run) pairs of one initialisation in one batch -> per-step arrays (steps+1, N)."""
    rng = np.random.default_rng(args.seed)
    sets, conds, seed_ints, labels = [], [], [], []
    for c in classes:
        imgs = real[c]
        k = min(args.shots, imgs.shape[0] - 1) if args.quick else args.shots
        args.shots_used = k
        if imgs.shape[0] < max(k, 2):
            raise SystemExit(f"class {c} has only {imgs.shape[0]} few-shot images, need {k}")
        for r in range(args.runs):
            # the same subsets for every init (rng re-seeded per init): paired comparisons
            idx = rng.permutation(imgs.shape[0])[:k]
            sets.append(resize_images(imgs[idx], model.seed_shape[-2:]))
            conds.append("unconditional" if args.unconditional else c)
            seed_ints.append(args.seed * 100_000 + 1000 * c + r)
            labels.append(c)
    labels_t = torch.tensor(labels)
    correct, conf, feats = [], [], []

    def callback(step, record, seeds, images):
        with torch.no_grad():
            probs = model.classify(resize_images(images, (JUDGE_SIZE, JUDGE_SIZE)))
            correct.append((probs.argmax(-1) == labels_t).float().numpy())
            conf.append(probs[torch.arange(len(labels)), labels_t].numpy())
            feats.append(judge_features(images).float().numpy())

    t0 = time.perf_counter()
    settings = SeedSelectSettings(init=init, steps=args.steps, lr=args.lr, sampler_steps=args.sampler_steps,
                                  guidance=args.guidance, inversion_steps=args.inversion_steps or None, seed=seed_ints)
    with progress_bars():
        result = seedselect(model, sets, conds, settings=settings, callback=callback)
    total = time.perf_counter() - t0
    n = len(labels)
    return {
        "init": init, "n": n, "labels": labels, "correct": np.stack(correct), "conf": np.stack(conf),
        "feats": np.stack(feats), "loss": np.array([h["losses"] for h in result.history]),
        "init_seconds_per_run": result.init_seconds / n,
        "step_seconds_per_run": float(np.mean([h["seconds"] for h in result.history[:-1]])) / n if args.steps else 0.0,
        "total_seconds": total,
    }


def semantic_features_text(model) -> str:
    if getattr(model, "encoder", None) is not None:
        return ("features of the testbed's encoder, a network trained apart from the judge that grades the images, "
                "as CLIP is in the paper")
    return "the judge's own penultimate features (this model ships no encoder: accuracy is then not independent)"


def first_reach(curve: np.ndarray, threshold: float) -> float:
    hit = np.flatnonzero(curve >= threshold - 1e-9)
    return float(hit[0]) if hit.size else math.inf


def class_feature_stat(run, classes, references, step, kind):
    """statistic(index arrays, one per class) = mean over classes of the FID-style score (kind 'fd') or KID
    ('kid') of the chosen runs' images of the class at one step; the classes with at least 2 runs."""
    labels = np.array(run["labels"])
    used = [c for c in classes if (labels == c).sum() >= 2]
    make = {"fd": group_frechet, "kid": group_kid}[kind]
    stats = [make(references[c], list(run["feats"][step][labels == c][:, None])) for c in used]
    return used, lambda idx: float(np.mean([stat(i) for stat, i in zip(stats, idx)]))


def feature_ci(run, classes, references, step, kind, n_boot=300, seed=0):
    """(mean over classes, low, high) of the FID-style score or KID at one step, runs resampled within each
    class (a stratified bootstrap). FID-style: the re-centred percentile interval (resampling duplicates images
    and inflates the replicates); KID: BCa over replicates that leave out an image's pairs with its copies."""
    used, stat = class_feature_stat(run, classes, references, step, kind)
    if not used:
        return float("nan"), float("nan"), float("nan")
    labels = np.array(run["labels"])
    return index_bootstrap_ci([int((labels == c).sum()) for c in used], stat, n_boot=n_boot, seed=seed,
                              method="recentred" if kind == "fd" else "BCa")


def feature_per_step(run, classes, references, kind):
    """The class-mean FID-style score (or KID) at every step."""
    out = []
    for s in range(run["feats"].shape[0]):
        used, stat = class_feature_stat(run, classes, references, s, kind)
        out.append(stat([np.arange((np.array(run["labels"]) == c).sum()) for c in used]) if used else float("nan"))
    return np.array(out)


def past_end_as_inf(step: float, never: int) -> float:
    """A step count at or past ``never`` (the stand-in for 'never reached': one step past the end) -> inf."""
    return math.inf if step >= never else float(step)


def reach_ci(correct: np.ndarray, threshold: float, n_boot=1000, seed=0):
    """Percentile bootstrap CI (runs resampled) of the first step at which mean accuracy >= threshold, widened
    to whole steps. 'Never' counts as one step past the end (so the interval is ordered) and maps back to inf."""
    never = correct.shape[0]
    reach = lambda idx: min(first_reach(correct[:, idx].mean(1), threshold), never)  # noqa: E731
    _, lo, hi = index_bootstrap_ci(correct.shape[1], reach, n_boot=n_boot, seed=seed)
    return past_end_as_inf(math.floor(lo), never), past_end_as_inf(math.ceil(hi), never)


def first_correct_median(correct: np.ndarray, n_boot=2000, seed=0):
    """Median over runs of the first step at which a run's image is judged correct, with its percentile bootstrap
    CI (runs resampled; BCa misbehaves on a median of a few distinct integers). A run never correct counts as one
    step past the end, so the estimate and the interval come from the same sample, and maps back to inf."""
    never = correct.shape[0]
    first = np.array([min(first_reach(correct[:, i], 1.0), never) for i in range(correct.shape[1])])
    median, lo, hi = bootstrap_ci(first, statistic=np.median, n_boot=n_boot, seed=seed, method="percentile")
    return tuple(past_end_as_inf(v, never) for v in (median, math.floor(lo), math.ceil(hi)))


def fmt(mean, lo, hi, digits=2):
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_secs(v):
    return "n/a" if not np.isfinite(v) else f"{v:.1f}"


def fmt_steps(v):
    return "not reached" if not np.isfinite(v) else f"{v:.0f}"


def summarise(runs, classes, references, args):
    summary = {}
    for run in runs:
        init = run["init"]
        acc, conf = run["correct"], run["conf"]
        steps = acc.shape[0]
        acc_ci = [bootstrap_ci(acc[s]) for s in range(steps)]
        conf_ci = [bootstrap_ci(conf[s]) for s in range(steps)]
        fd = feature_per_step(run, classes, references, "fd")
        kid = feature_per_step(run, classes, references, "kid")
        reach = first_reach(acc.mean(1), args.threshold)
        lo, hi = reach_ci(acc, args.threshold)
        first_median, first_lo, first_hi = first_correct_median(acc)
        t_init, t_step = run["init_seconds_per_run"], run["step_seconds_per_run"]
        wall = t_init + reach * t_step if np.isfinite(reach) else math.inf
        summary[init] = {
            "n": int(acc.shape[1]), "accuracy": acc_ci, "confidence": conf_ci, "fd": fd.tolist(), "kid": kid.tolist(),
            "fd_ci": {s: feature_ci(run, classes, references, s, "fd")[1:] for s in TABLE_STEPS if s < steps},
            "kid_ci": {s: feature_ci(run, classes, references, s, "kid")[1:] for s in TABLE_STEPS if s < steps},
            "loss_mean": run["loss"].mean(1).tolist(),
            "steps_to_threshold": reach, "steps_to_threshold_ci": [lo, hi],
            "wall_seconds_to_threshold": wall,
            "wall_seconds_to_threshold_ci": [t_init + lo * t_step if np.isfinite(lo) else math.inf,
                                             t_init + hi * t_step if np.isfinite(hi) else math.inf],
            "per_run_first_correct_median": first_median,
            "per_run_first_correct_ci": [first_lo, first_hi],
            "per_run_never_correct": int((acc.max(0) < 1).sum()),
            "init_seconds_per_run": t_init, "step_seconds_per_run": t_step, "batch_total_seconds": run["total_seconds"],
        }
    return summary


PAIRED_STEPS = (0, 1, 3, 5, 10, 30)


def paired_differences(runs, args) -> list[dict]:
    """Judge confidence of init a minus init b on the same runs (same reference subsets), at a few steps: mean
    difference with a paired bootstrap 95% CI. Pairs: every init vs random, and nao-centroid vs cog-centroid."""
    by_init = {r["init"]: r for r in runs}
    pairs = [(i, "random") for i in by_init if i != "random" and "random" in by_init]
    if {"nao-centroid", "cog-centroid"} <= set(by_init):
        pairs.append(("nao-centroid", "cog-centroid"))
    steps = [s for s in PAIRED_STEPS if s <= args.steps] + ([args.steps] if args.steps not in PAIRED_STEPS else [])
    rows = []
    for a, b in pairs:
        cells = {s: paired_bootstrap_ci(by_init[a]["conf"][s], by_init[b]["conf"][s], seed=s) for s in steps}
        rows.append({"a": a, "b": b, "n": int(by_init[a]["conf"].shape[1]), "steps": cells})
    return rows


def paired_markdown(rows) -> list[str]:
    if not rows:
        return []
    steps = list(rows[0]["steps"])
    L = ["## Paired differences in judge confidence (a − b on the same runs: same reference subsets)", "",
         "Mean difference [paired bootstrap 95% CI]; a CI that excludes 0 is marked **bold**.", "",
         "| a − b | n | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for r in rows:
        cells = []
        for s in steps:
            m, lo, hi = r["steps"][s]
            text = f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            cells.append(f"**{text}**" if lo > 0 or hi < 0 else text)
        L.append(f"| {r['a']} − {r['b']} | {r['n']} | " + " | ".join(cells) + " |")
    return L + [""]


def verdict(summary, args) -> str:
    if "random" not in summary:
        return "No 'random' baseline was run, so no speed-up can be stated."
    base = summary["random"]
    lines = []
    for init in [i for i in summary if i != "random"]:
        s = summary[init]
        a, b = s["steps_to_threshold"], base["steps_to_threshold"]
        wa, wb = s["wall_seconds_to_threshold"], base["wall_seconds_to_threshold"]
        pct = f"{args.threshold:.0%}"
        if not np.isfinite(a) and not np.isfinite(b):
            lines.append(f"- **{init}**: neither it nor random init reaches {pct} accuracy within {args.steps} steps.")
        elif not np.isfinite(a):
            lines.append(f"- **{init}**: does not reach {pct} within {args.steps} steps; random init does at step {b:.0f}: "
                         "no speed-up (slower).")
        elif not np.isfinite(b):
            lines.append(f"- **{init}**: reaches {pct} at step {a:.0f} ({wa:.1f} s per run incl. initialisation); random "
                         f"init does not within {args.steps} steps: a speed-up of more than {args.steps / max(a, 1):.0f}x "
                         "in steps.")
        elif a < b:
            lines.append(f"- **{init}**: reaches {pct} at step {a:.0f} vs {b:.0f} for random init: "
                         f"{b / max(a, 1):.1f}x fewer steps (step 0 counts as 1), wall time {wa:.1f} s vs {wb:.1f} s per "
                         f"run ({wb / max(wa, 1e-9):.1f}x, initialisation included).")
        elif a == b:
            lines.append(f"- **{init}**: reaches {pct} at the same step as random init ({a:.0f}): no speed-up in steps; "
                         f"wall time {wa:.1f} s vs {wb:.1f} s per run.")
        else:
            lines.append(f"- **{init}**: reaches {pct} at step {a:.0f}, later than random init ({b:.0f}): no speed-up.")
    return "\n".join(lines)


def write_report(out: Path, summary, classes, model, args, env, paired=()):
    inits = list(summary)
    steps = args.steps + 1
    rows = [s for s in TABLE_STEPS if s < steps] + ([args.steps] if args.steps not in TABLE_STEPS else [])
    title = "rare concepts of the unconditional model" if args.unconditional else "tail classes, class-conditional"
    L = [f"# SeedSelect: does NAO initialisation speed it up? ({title})", ""]
    if args.unconditional:
        L.append("**Condition: none.** Images are generated with the null class (guidance 1), i.e. from the model's "
                 "unconditional distribution, in which the tail classes are rare (step 0 of random init shows how "
                 "rare); the class is given only by the reference images, as for a concept a text model renders badly.")
    else:
        L.append(f"**Condition: the class label**, guidance {args.guidance if args.guidance is not None else model.default_guidance}.")
    L.append("")
    L.append(f"Model `{getattr(model, 'name', '?')}`; tail classes {', '.join(f'{c} ({model.class_names[c]})' for c in classes)}; "
             f"{args.runs} runs per class and initialisation (n = {len(classes) * args.runs} per initialisation), each "
             f"with its own random {getattr(args, 'shots_used', args.shots)}-shot subset of the shipped real images of the class (the same subsets "
             "for every initialisation) and, for random init, its own seed.")
    L.append("")
    L.append(f"SeedSelect: {args.steps} AdamW steps, lr {args.lr} (tenfold decay after 3 updates), loss = 10 x semantic "
             f"({semantic_features_text(model)}, 1 - cosine to the mean reference feature, over the x0-predictions of the last 3 "
             "DDIM steps weighted 0.05/0.25/0.7) + appearance (MSE of the final x_0 to the mean reference in [-1, 1] pixels). "
             f"**The optimisation loop samples with {args.sampler_steps} DDIM steps** (the model's default is "
             f"{model.default_steps}) to keep the run short; images are scored as generated by that sampler. Guidance "
             f"{args.guidance if args.guidance is not None else model.default_guidance}. Centroid inits invert the "
             f"references with {args.inversion_steps or model.default_steps} DDIM steps (guidance 1, same condition); 'nao-paths' scores "
             "the NAO centroid and 5 interior points of each NAO path from it to each inversion by the SeedSelect loss "
             "(no gradients) and starts from the best.")
    L.append("")
    L.append(f"Environment: {env['torch_threads']} torch threads on {env['cpu']}; per-run times are batch times / batch size.")
    L.append("")
    L.append("## Verdict")
    L.append("")
    L.append(verdict(summary, args))
    L.append("")
    L.append(f"## Steps and wall time to reach {args.threshold:.0%} judge accuracy (mean over runs)")
    L.append("")
    L.append("| init | n | steps to reach [95% CI] | wall s per run to reach [95% CI] | init s per run | s per step per run | "
             "median first correct step per run [CI] | runs never correct |")
    L.append("|---|---|---|---|---|---|---|---|")
    for i in inits:
        s = summary[i]
        lo, hi = s["steps_to_threshold_ci"]
        wlo, whi = s["wall_seconds_to_threshold_ci"]
        mc = s["per_run_first_correct_ci"]
        L.append(f"| {i} | {s['n']} | {fmt_steps(s['steps_to_threshold'])} [{fmt_steps(lo)}, {fmt_steps(hi)}] | "
                 f"{fmt_secs(s['wall_seconds_to_threshold'])} [{fmt_secs(wlo)}, {fmt_secs(whi)}] | {s['init_seconds_per_run']:.2f} | "
                 f"{s['step_seconds_per_run']:.2f} | {fmt_steps(s['per_run_first_correct_median'])} "
                 f"[{fmt_steps(mc[0])}, {fmt_steps(mc[1])}] | {s['per_run_never_correct']} |")
    L.append("")
    L.append("Bootstrap CIs resample runs; 'not reached' means the threshold was not met within the steps run.")
    for key, title, digits in (("accuracy", "Judge accuracy vs step: mean [95% CI]", 2),
                               ("confidence", "Judge confidence (probability of the class) vs step: mean [95% CI]", 2)):
        L.append("")
        L.append(f"## {title}")
        L.append("")
        L.append("| step | " + " | ".join(inits) + " |")
        L.append("|---|" + "---|" * len(inits))
        for s in rows:
            L.append(f"| {s} | " + " | ".join(fmt(*summary[i][key][s], digits=digits) for i in inits) + " |")
    L.append("")
    L += paired_markdown(paired)
    L.append("## FID-style score and KID vs step (judge features of the generated vs the real images of the class; "
             "lower is better)")
    L.append("")
    L.append(f"Per class from the {args.runs} generated images of that class vs all shipped real images of the class, "
             "averaged over classes. FID-style: the Fréchet distance of fitted Gaussians; so few samples bias it "
             "upwards, so compare it across initialisations only; 95% CI: runs resampled within class, percentile "
             "interval re-centred on the estimate (resampling duplicates images, which inflates every replicate), "
             "i.e. the estimate's spread, not its bias. KID: the unbiased squared MMD (kernel (x·y/d + 1)³), the "
             "number to compare on; BCa interval over replicates that leave out an image's pairs with its copies.")
    L.append("")
    L.append("| step | " + " | ".join(f"{i} FID-style" for i in inits) + " | " + " | ".join(f"{i} KID" for i in inits) + " |")
    L.append("|---|" + "---|" * (2 * len(inits)))
    for s in rows:
        cells = []
        for key, digits in (("fd", 1), ("kid", 3)):
            for i in inits:
                lo, hi = summary[i][f"{key}_ci"].get(s, (float("nan"), float("nan")))
                cells.append(fmt(summary[i][key][s], lo, hi, digits))
        L.append(f"| {s} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("![accuracy vs step](accuracy_vs_step.png)")
    L.append("")
    (out / "report.md").write_text("\n".join(L))


def plot(out: Path, summary, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    x = np.arange(args.steps + 1)
    for init, s in summary.items():
        for ax, key in zip(axes[:2], ("accuracy", "confidence")):
            m, lo, hi = (np.array(v) for v in zip(*s[key]))
            ax.plot(x, m, label=f"{init} (n={s['n']})")
            ax.fill_between(x, lo, hi, alpha=0.15)
        axes[2].plot(x, s["fd"], label=init)
    axes[0].axhline(args.threshold, color="grey", ls="--", lw=0.8)
    axes[0].set_ylabel("judge accuracy")
    axes[1].set_ylabel("judge confidence")
    axes[2].set_ylabel("FID-style score (judge features)")
    for ax in axes:
        ax.set_xlabel("SeedSelect step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"SeedSelect on tail classes{' (unconditional model)' if args.unconditional else ''}: "
                 "initialisation vs progress (mean, 95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_step.png", dpi=110)
    plt.close(fig)


def clean(obj):
    """JSON-safe: numpy -> Python, inf/NaN -> None (standard JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args)
    classes = args.classes if args.classes else list(model.tail_classes)
    if not classes:
        raise SystemExit("the model lists no tail classes: pass --classes")
    if args.quick:
        classes = classes[:1]
    def judge_features(images):
        return model.judge_features(resize_images(images, (JUDGE_SIZE, JUDGE_SIZE)))

    real, real_feats = {}, {}
    for c in classes:
        imgs, _ = model.fewshot(c)
        real[c] = imgs
        with torch.no_grad():
            real_feats[c] = judge_features(imgs).float().numpy()
    env = {"torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "python": platform.python_version(), "torch": torch.__version__}
    runs = []
    for init in args.inits:
        print(f"== {init}", flush=True)
        runs.append(run_init(model, init, classes, real, args, judge_features))
        r = runs[-1]
        print(f"   accuracy step 0 {r['correct'][0].mean():.2f} -> step {args.steps} {r['correct'][-1].mean():.2f}; "
              f"{r['total_seconds']:.1f} s", flush=True)
    summary = summarise(runs, classes, {c: FeatureReference(f) for c, f in real_feats.items()}, args)
    paired = paired_differences(runs, args)
    payload = {"config": vars(args), "classes": classes, "env": env, "summary": summary, "paired": paired,
               "per_run": {r["init"]: {"labels": r["labels"], "correct": r["correct"].tolist(),
                                       "confidence": r["conf"].tolist(), "loss": r["loss"].tolist()} for r in runs}}
    (out / "results.json").write_text(json.dumps(clean(payload), indent=1))
    write_report(out, summary, classes, model, args, env, paired)
    plot(out, summary, args)
    print((out / "report.md").read_text().split("## Steps")[0])
    print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'accuracy_vs_step.png'}")


if __name__ == "__main__":
    main()

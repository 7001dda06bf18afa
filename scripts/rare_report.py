"""One picture per data set for the rare-concept study (issue 35): the few-shot classes' accuracy gain of each arm
over the oversampled references, against the generator's exposure to those classes, one line per arm, from the
results.json of several long-tail benchmark runs (one per exposure); the same numbers as a table, and each run's
declared contrasts with simultaneous intervals and Holm-adjusted p-values, on a results page. With ``--axis shots``
the runs share one exposure and differ in the references per few-shot class (k), the x axis.

  .venv/bin/python scripts/rare_report.py --runs runs/rare/bench-digits-tail-e*-k5 \\
      --out docs/reports/rare/digits.png --page docs/results.md
  .venv/bin/python scripts/rare_report.py --axis shots --runs runs/rare/bench-digits-tail-e0-k* \\
      --out docs/reports/rare/digits-shots.png --page docs/results.md

The gain: per replicate, the few-shot classes' mean per-class accuracy (lt_few) of the arm minus that of
``oversample``, both on the fill dose with cross-entropy (the balanced set: no rebalancing on top), then the mean
and its interval over replicates: the simultaneous one (Bonferroni over the run's declared contrasts) where the run
declared 'arm - oversample @ few, ce', else the 95% t interval. A run's exposure: the images of each exposure-limited class its generator saw
(testbed.json's ``exposure``; a run folder named ``...-e<N>`` or ``...-efull`` where that is not readable). The
page gets the picture and the table between ``<!-- rare-report:NAME -->`` and ``<!-- /rare-report:NAME -->``
(NAME: the picture's file stem), replaced on a rerun, appended where the markers are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

CONTROL = "oversample"
SKIP = ("real", "balanced real (ceiling)", CONTROL)


def fail(message: str) -> None:
    print(f"rare_report: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_exposure(folder: Path, results: dict) -> tuple[float, str]:
    """(sort key, label) of a run's generator exposure."""
    model_folder = (results.get("model") or {}).get("folder")
    try:
        exposure = json.loads((Path(model_folder) / "testbed.json").read_text())["exposure"]
        counts = sorted(set(int(v) for v in exposure["seen"].values()))
        label = "/".join(map(str, counts))
        # "full", or per class: "1=full,4=full,7=full"
        full = all(part.rpartition("=")[2] == "full" for part in str(exposure.get("requested")).split(","))
        return float(counts[0]), f"full ({label})" if full else label
    except (TypeError, OSError, KeyError, ValueError, json.JSONDecodeError):
        pass
    match = re.search(r"-e(\d+|full)(?:-|$)", folder.name)
    if match is None:
        return math.inf, "full"  # a generator trained on everything it has
    return (math.inf, "full") if match[1] == "full" else (float(match[1]), match[1])


def run_shots(folder: Path, results: dict) -> tuple[float, str]:
    """(sort key, label) of a run's references per few-shot class."""
    shots = ((results.get("config") or {}).get("longtail") or {}).get("shots")
    if not isinstance(shots, int):
        raise ValueError("the run's settings record no shots (config.longtail.shots)")
    return float(shots), str(shots)


# axis -> (the run's position on it, the x axis' label, a table column's heading)
AXES = {
    "exposure": (run_exposure, "generator exposure (training images of each few-shot class)", "exposure"),
    "shots": (run_shots, "references per few-shot class (k)", "k ="),
}


def t_interval(values: np.ndarray) -> dict:
    from scipy import stats

    mean = float(values.mean())
    if values.size < 2 or np.allclose(values, values[0]):
        return {"mean": mean, "lo": mean, "hi": mean, "n": int(values.size)}
    lo, hi = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "n": int(values.size)}


def gains(section: dict) -> dict:
    """arm -> t interval of (arm - oversample) in lt_few over replicates, fill dose (else the only one), ce."""
    items = section["items"]
    doses = {key.split(" / ")[1] for key in items} - {"none"}
    dose = "fill" if "fill" in doses else min(doses)
    control = items.get(f"{CONTROL} / {dose} / ce")
    if control is None:
        raise ValueError(f"no {CONTROL} / {dose} / ce cell: the gain needs the oversample arm with ce")
    base = {tuple(r["key"]): r["lt_few"] for r in control}
    out = {}
    for key, reps in items.items():
        arm, arm_dose, treatment = key.split(" / ")
        if arm in SKIP or arm_dose != dose or treatment != "ce":
            continue
        diffs = np.array([r["lt_few"] - base[tuple(r["key"])] for r in reps if tuple(r["key"]) in base])
        if diffs.size:
            out[arm] = t_interval(diffs)
    return out


def declared(section: dict) -> list[dict]:
    """The run's declared contrasts: text, mean difference, the 95% t interval widened to a simultaneous one over
    the run's m contrasts (Bonferroni: level 1 - 0.05 / m, the interval that matches Holm's strictest step), the
    Holm-adjusted p and the verdict, as the benchmark recorded them."""
    from scipy import stats

    table = next((t for t in section["tables"] if t["name"] == "longtail-contrasts"), None)
    rows = [] if table is None else table["rows"]
    out = []
    for r in rows:
        t = r["metrics"]["diff_t"]
        n, m = int(t["n"]), len(rows)
        lo, hi = t["lo"], t["hi"]
        if n >= 2 and hi > lo:
            se = (hi - lo) / (2 * stats.t.ppf(0.975, n - 1))
            half = se * stats.t.ppf(1 - 0.025 / m, n - 1)
            lo, hi = t["mean"] - half, t["mean"] + half
        out.append({"contrast": r["label"]["contrast"], "declared": r.get("declared"), "mean": t["mean"],
                    "lo": lo, "hi": hi, "n": n, "p_holm": float(r["label"]["p (Holm)"]), "verdict": r["verdict"]})
    return out


def simultaneous(arm_gains: dict, contrasts: list[dict]) -> dict:
    """The gains with the simultaneous interval of the declared contrast 'arm − oversample @ few' where the run
    declared one (marked ``declared``), the plain 95% t interval elsewhere."""
    out = {}
    for arm, g in arm_gains.items():
        c = next((c for c in contrasts if c["contrast"].startswith(f"{arm} ce − {CONTROL} ce @ few")), None)
        out[arm] = g if c is None else {**g, "lo": c["lo"], "hi": c["hi"], "declared": True}
    return out


def roundtrip(section: dict) -> str:
    table = next((t for t in section["tables"] if t["name"] == "longtail-roundtrip"), None)
    if table is None:
        return "not recorded"
    return ", ".join(f"{r['label']['condition']} {r['metrics']['psnr']['mean']:.1f} dB" for r in table["rows"])


def compute_seconds(section: dict) -> float | None:
    """The benchmark's time making synthetic images, training classifiers and checking the plateau, summed over
    its replicates as stored, so a run resumed after an interruption counts every attempt's share once (its wall
    time counts the last attempt only)."""
    timing = section.get("timing") or {}
    parts = [timing.get(k) for k in ("synthesis_s", "classifiers_s", "plateau_s")]
    return float(sum(parts)) if all(isinstance(v, (int, float)) for v in parts) else None


def read_results(folder: Path) -> dict:
    """A finished long-tail benchmark's results.json; ValueError (the refusal's words) where there is none."""
    path = folder / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        results["experiments"]["longtail"]  # a long-tail benchmark's
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"--runs: {path} is not the results.json of a finished long-tail benchmark") from None
    return results


def read_run(run: str, axis: str = "exposure") -> dict:
    """One benchmark run's gains, declared contrasts, round trip and time, and its position on ``axis``; ValueError
    (the refusal's words) where the run cannot give them."""
    folder = Path(run)
    results = read_results(folder)
    section = results["experiments"]["longtail"]
    try:
        key, label = AXES[axis][0](folder, results)
        contrasts = declared(section)
        return {"run": folder, "key": key, "position": label, "gains": simultaneous(gains(section), contrasts),
                "declared": contrasts, "roundtrip": roundtrip(section), "compute_s": compute_seconds(section)}
    except ValueError as exc:
        raise ValueError(f"--runs: {folder / 'results.json'}: {exc}") from None


def load(runs: list[str], axis: str = "exposure") -> list[dict]:
    """The runs of one picture, one per position on ``axis``, in its order."""
    out = [read_run(run, axis) for run in runs]
    labels = [r["position"] for r in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--runs: two runs have the same {axis} ({', '.join(labels)}): give one run per {axis}")
    return sorted(out, key=lambda r: r["key"])


def arm_order(rows: list[dict]) -> list[str]:
    """Every run's arms in the order the runs list them, an arm one run lacks kept in its place in the others (at
    k = 2 the centroid arm is not run; it still sits between paths and SeedSelect)."""
    order: list[str] = []
    for r in rows:
        at = -1
        for arm in r["gains"]:
            if arm not in order:
                order.insert(at + 1, arm)
            at = order.index(arm)
    return order


def plot(rows: list[dict], out: Path, title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = arm_order(rows)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8.5, 4.2), dpi=120)
    width = 0.5 / max(1, len(arms))
    for i, arm in enumerate(arms):
        pts = [(j + (i - (len(arms) - 1) / 2) * width, r["gains"][arm]) for j, r in enumerate(rows) if arm in r["gains"]]
        xs = [p[0] for p in pts]
        mean = np.array([p[1]["mean"] for p in pts])
        err = np.array([[p[1]["mean"] - p[1]["lo"] for p in pts], [p[1]["hi"] - p[1]["mean"] for p in pts]])
        ax.errorbar(xs, mean, yerr=err, marker="o", capsize=3, label=arm)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [r["position"] for r in rows])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("few-shot accuracy − oversampled references")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: no point hidden
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, out)


def table(rows: list[dict], heading: str) -> str:
    arms = arm_order(rows)
    lines = ["| arm | " + " | ".join(f"{heading} {r['position']}" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for arm in arms:
        cells = [f"{g['mean']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]{'*' if g.get('declared') else ''} (n {g['n']})"
                 if (g := r["gains"].get(arm)) else "not run" for r in rows]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines.append("| references' round trip | " + " | ".join(r["roundtrip"] for r in rows) + " |")
    lines.append("| benchmark time (synthesis + classifiers + plateau check) | " + " | ".join(
        f"{r['compute_s']:.0f} s" if r["compute_s"] is not None else "?" for r in rows) + " |")
    return "\n".join(lines)


def contrast_tables(rows: list[dict], heading: str) -> str:
    """Per run, the declared contrasts with simultaneous intervals and Holm-adjusted p-values."""
    parts = []
    for r in rows:
        if not r["declared"]:
            continue
        m = len(r["declared"])
        parts += [f"**{heading.capitalize()} {r['position']}** ({r['run']}): {m} declared contrasts, few-shot classes' accuracy, "
                  f"cross-entropy on the filled set; mean over {r['declared'][0]['n']} replicates with the "
                  f"simultaneous {100 * (1 - 0.05 / m):.2f}% t interval (Bonferroni over the {m}) and the Holm-adjusted "
                  "sign-flip p.", "", "| contrast | mean | simultaneous interval | p (Holm) | verdict |",
                  "|---|---|---|---|---|"]
        parts += [f"| {c['contrast']} | {c['mean']:+.3f} | [{c['lo']:+.3f}, {c['hi']:+.3f}] | {c['p_holm']:.3g} | "
                  f"{c['verdict']} |" for c in r["declared"]]
        parts.append("")
    return "\n".join(parts)


def update_page(page: Path, name: str, text: str) -> None:
    begin, end = f"<!-- rare-report:{name} -->", f"<!-- /rare-report:{name} -->"
    old = page.read_text(encoding="utf-8") if page.is_file() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + block + "\n"
    tmp = page.with_name(f".{page.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, page)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="benchmark run folders, one per point of the axis")
    parser.add_argument("--axis", choices=sorted(AXES), default="exposure",
                        help="what differs between the runs: the generator's exposure (default) or k")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--page", default=None, help="a Markdown page that gets the picture and the table")
    parser.add_argument("--title", default=None, help="the picture's title (default: the PNG's file stem)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        fail(f"--out must name a .png file, got {args.out}")
    try:
        rows = load(args.runs, args.axis)
    except ValueError as exc:
        fail(str(exc))
    name = out.stem
    _, xlabel, heading = AXES[args.axis]
    text = table(rows, heading) + "\n\n" + contrast_tables(rows, heading)
    plot(rows, out, args.title or name, xlabel)
    if args.page:
        page = Path(args.page)
        link = os.path.relpath(out, page.parent)
        caption = (f"Few-shot accuracy gain over oversampled references (fill dose, cross-entropy; mean over "
                   f"replicates; * the simultaneous interval of the run's declared contrast, Bonferroni over its "
                   f"declared contrasts, else the 95% t interval) against {xlabel.split(' (')[0]}, {name}: "
                   + ", ".join(str(r["run"]) for r in rows) + ".")
        update_page(page, name, f"![{name}]({link})\n\n{caption}\n\n{text}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writing an evaluation: results.json (every number + configuration), report.md (one table per experiment),
PNG plots and example grids. Every file is written under a temporary name and renamed into place."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from ..outputs import atomic_path, write_text
from .config import METRICS

RESULTS_BEGIN = "<!-- BEGIN seedspace-evaluate -->"
RESULTS_END = "<!-- END seedspace-evaluate -->"
#: experiments whose report goes into a results section of its own: name -> (begin marker, end marker)
OWN_SECTIONS = {
    "priors": ("<!-- BEGIN seedspace-evaluate-priors -->", "<!-- END seedspace-evaluate-priors -->"),
    "schedulers": ("<!-- BEGIN seedspace-schedulers -->", "<!-- END seedspace-schedulers -->"),
}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(_jsonable(data), indent=1, ensure_ascii=False) + "\n")


# -- markdown -------------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.3f}" if a < 1 else f"{v:.2f}"
    return f"{v:.2g}"


EXCLUDED_MARK = "†"
EXCLUDED_NOTE = (f"{EXCLUDED_MARK} The interval excludes its point estimate: nearly all bootstrap replicates fall on "
                 "one side of it (a very skewed statistic at this n); the interval is their percentile interval.")
CI_METHODS = ("Cells: mean [95% bootstrap CI]. Means: BCa intervals (``scipy.stats.bootstrap``). KID: BCa over "
              "replicates that leave out the pairs across copies of one resampled item (an image and its duplicate, "
              "or two frames of a path drawn twice), so they stay unbiased. "
              "FID-style: resampling duplicates images, which inflates every replicate of this upward-biased "
              "statistic, so its interval is the percentile interval re-centred on the estimate (replicates minus "
              "their mean excess over the estimate): it gives the estimate's spread at this n, not its bias. The "
              "FID-style estimate itself is biased upwards with few images, so compare it only between rows with "
              "the same n; KID is unbiased at any n and the number to compare on (it can be slightly negative "
              "when the distributions agree).")


def excludes_estimate(st: dict | None) -> bool:
    """True when a stat's interval does not contain its point estimate."""
    if not st or st.get("lo") is None or st.get("mean") is None:
        return False
    tol = 1e-9 * max(1.0, abs(st["mean"]))
    return not st["lo"] - tol <= st["mean"] <= st["hi"] + tol


def fmt_stat(st: dict | None, ci: bool = True) -> str:
    """'mean [lo, hi]' (marked when the interval excludes the mean), or just the mean."""
    if not st:
        return "–"
    if not ci or st.get("lo") is None or st["lo"] == st["hi"]:
        return _fmt(st["mean"])
    mark = EXCLUDED_MARK if excludes_estimate(st) else ""
    return f"{_fmt(st['mean'])} [{_fmt(st['lo'])}, {_fmt(st['hi'])}]{mark}"


def _label_text(label: dict) -> list[str]:
    out = []
    for k, v in label.items():
        out.append(f"{v:g}" if isinstance(v, float) else str(v))
    return out


def table_markdown(table: dict) -> str:
    """A table as markdown (kinds: rows of metrics, a class x method matrix, paired differences)."""
    kind = table.get("kind", "rows")
    lines = [f"**{table['title']}**", ""]
    if kind == "matrix":
        metric = table["metrics"][0]
        cols = table["columns"]
        first = list(table["rows"][0]["label"]) if table["rows"] else ["class"]
        lines += ["| " + " | ".join(first + cols) + " |", "|" + "---|" * (len(first) + len(cols))]
        for row in table["rows"]:
            lines.append("| " + " | ".join(_label_text(row["label"]) + [
                fmt_stat(row["cells"].get(c)) + (f" (n={row['cells'][c]['n']})" if c in row["cells"] else "")
                for c in cols]) + " |")
        lines += ["", f"_{METRICS[metric][0]}: mean [95% CI] (n)_"]
        return "\n".join(lines)
    if kind == "paired":
        lines += ["| experiment | comparison | metric | a − b [95% CI] | n | verdict |", "|---|---|---|---|---|---|"]
        for row in table["rows"]:
            lb = row["label"]
            m = lb["metric"]
            better = METRICS[m][1]
            lines.append(f"| {lb['experiment']} | {lb['comparison']} | {METRICS[m][0]}"
                         f"{' (' + better + ' is better)' if better else ''} | {fmt_stat(row['metrics']['diff'])} | "
                         f"{row['n_items']} | {row['verdict']} |")
        return "\n".join(lines)
    metrics = table["metrics"]
    first = list(table["rows"][0]["label"]) if table["rows"] else []
    heads = [METRICS[m][0] + {"higher": " ↑", "lower": " ↓"}.get(METRICS[m][1], "") for m in metrics]
    verdicts = any("verdict" in row for row in table["rows"])  # paired rows: which CIs exclude 0
    lines += ["| " + " | ".join(first + heads + ["n"] + ["verdict"] * verdicts) + " |",
              "|" + "---|" * (len(first) + len(metrics) + 1 + verdicts)]
    for row in table["rows"]:
        n = (f"{row['n_items']}" + (f" / {row['n_images']}" if "n_images" in row else "")) if "n_items" in row \
            else str(next(iter(row["metrics"].values()))["n"])
        lines.append("| " + " | ".join(_label_text(row["label"]) + [fmt_stat(row["metrics"].get(m)) for m in metrics]
                                       + [n] + [row.get("verdict", "")] * verdicts) + " |")
    return "\n".join(lines)


def report_markdown(results: dict, title: str = "seedspace evaluate", judge: bool = True) -> str:
    """report.md of an evaluation: machine, judge (``judge=False``: one line), then each experiment's tables and
    notes."""
    env, model, cfg = results["environment"], results["model"], results["config"]
    lines = [f"# {title}", "",
             f"- model: `{model['name']}` ({model.get('folder', '')}), seed shape {model['seed_shape']} (d = {model['d']}), "
             f"{model['steps']} {model.get('sampler', 'DDIM')} steps, guidance {model['guidance']}, "
             f"{model.get('inversion', 'DDIM inversion')} {model['inversion_steps']} steps (guidance 1)",
             f"- machine: {env['machine']}; torch {env['torch']} with {env['threads']} threads",
             f"- wall time: {results['wall_time_s']:.0f} s; {results['counters']['images']} images generated "
             f"({results['counters']['generate_s']:.0f} s), {results['counters']['inversions']} inversions "
             f"({results['counters']['invert_s']:.0f} s)",
             f"- run: experiments {', '.join(cfg['experiments'])}; seed {cfg['seed']}"
             f"{'; --quick' if cfg['quick'] else ''}; the full configuration is in results.json", ""]
    if not judge:
        lines += [f"Judge: the model's classifier and its features against {results['judge']['references']}, as in "
                  "the evaluation's judge section. " + CI_METHODS, ""]
    else:
        lines += ["## Judge", "",
                  "Fixed before any method is run and the same for all of them: the model's judge classifier "
                  "(accuracy = share of images classified as the class they were generated for; conf. = its "
                  f"probability of that class), its {results['judge']['feature_dim']}-d penultimate features, and real "
                  f"reference images: {results['judge']['references']}. Feat. dist. = distance of an image's features "
                  "to the mean of the class's real images, in units of the real images' own mean distance (≈1 is as "
                  "typical as a real image). FID-style = Fréchet distance between Gaussians fitted to judge features "
                  "of the generated images and of the real references of the same classes; KID = the unbiased squared "
                  "MMD between the same feature sets with the kernel (x·y/d + 1)³. " + CI_METHODS + " n = items / "
                  "images (items are the resampled units: paths, input sets, images).", ""]
    calib = (results["judge"].get("calibration") or []) if judge else []
    if calib:
        lines += ["Judge on the real reference images: " + ", ".join(
            f"{c['name']} {c['accuracy']:.2f}" for c in calib) + " (accuracy per class).", ""]
    for name, sec in results["experiments"].items():
        lines += [f"## {sec['title']}", "", sec["description"], ""]
        if sec.get("time_s") is not None:
            lines += [f"_{sec.get('images', 0)} images generated; {sec['time_s']:.0f} s, of which "
                      f"{sec.get('model_s', 0):.0f} s in the diffusion model._", ""]
        for table in sec["tables"]:
            lines += [table_markdown(table), ""]
        for note in sec.get("notes", []):
            lines.append(f"- {note}")
        if sec.get("notes"):
            lines.append("")
        for fig in sec.get("figures", []):
            lines += [f"![{fig}]({fig})", ""]
    text = "\n".join(lines).rstrip() + "\n"
    return text + f"\n{EXCLUDED_NOTE}\n" if EXCLUDED_MARK in text else text


def has_markers(path, begin: str = RESULTS_BEGIN, end: str = RESULTS_END) -> bool:
    """True when the file exists and holds the begin marker followed by the end marker."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return re.search(re.escape(begin) + r".*?" + re.escape(end), text, re.S) is not None


def update_marked_file(path, body: str, begin: str = RESULTS_BEGIN, end: str = RESULTS_END) -> bool:
    """Replace the text between the begin/end markers of a file (e.g. a results section of docs/results.md).
    Returns False (and changes nothing) when the markers are missing."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return False
    write_text(path, pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text))
    return True


def results_targets(experiments) -> list[tuple[str, str, tuple]]:
    """(begin, end, experiments) of each results section a run with these experiments writes: the ones in
    :data:`OWN_SECTIONS` each between their own markers, the rest together between the seedspace-evaluate
    markers."""
    rest = tuple(e for e in experiments if e not in OWN_SECTIONS)
    own = [(*OWN_SECTIONS[e], (e,)) for e in experiments if e in OWN_SECTIONS]
    return ([(RESULTS_BEGIN, RESULTS_END, rest)] if rest else []) + own


def results_section(results: dict, link: str | None = None, judge: bool = True) -> str:
    """A results section: the report with headings moved two levels down."""
    md = report_markdown(results, judge=judge)
    md = re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", md, flags=re.M)
    md = re.sub(r"^!\[.*$\n?", "", md, flags=re.M)  # figures live next to the report, not on the results page
    if link:
        md += f"\nFull report and plots: `{link}`.\n"
    return md


# -- plots ----------------------------------------------------------------------------------------------------
def _save_fig(fig, path: Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        return Path(path)
    finally:
        import matplotlib.pyplot as plt  # lazy: slow to import, needed only for figures

        plt.close(fig)


def plot_norm(table: dict, path: Path) -> Path:
    """Accuracy, confidence and KID versus norm/sqrt(d), one line per group, with CI bands."""
    import matplotlib  # lazy: slow to import, needed only for figures, and the backend is set before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    groups = []
    for row in table["rows"]:
        if row["label"]["group"] not in groups:
            groups.append(row["label"]["group"])
    for ax, metric in zip(axes, ("acc", "conf", "kid")):
        for g in groups:
            rows = [r for r in table["rows"] if r["label"]["group"] == g]
            x = [r["label"]["scale"] for r in rows]
            mean = [r["metrics"][metric]["mean"] for r in rows]
            lo = [r["metrics"][metric]["lo"] for r in rows]
            hi = [r["metrics"][metric]["hi"] for r in rows]
            ax.plot(x, mean, marker="o", label=f"{g} (n={rows[0]['metrics'][metric]['n']})")
            ax.fill_between(x, lo, hi, alpha=0.2)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("seed norm / √d")
        ax.set_ylabel(METRICS[metric][0])
        if metric in ("acc", "conf"):
            ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("Judge scores versus seed norm (95% bootstrap CI)")
    return _save_fig(fig, path)


def plot_grid(examples: dict, path: Path, title: str) -> Path:
    """Rows of images (tensors (C, H, W) in [0, 1]) with row and column labels."""
    import matplotlib  # lazy: slow to import, needed only for figures, and the backend is set before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = examples["rows"]
    ncols = max((len(r) for r in rows), default=1)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.1 * ncols + 1.2, 1.15 * len(rows) + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(row):
                img = row[c].detach().cpu().float().numpy()
                img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
                ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(examples["row_labels"][r], rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and c < len(examples.get("col_labels", [])):
                ax.set_title(examples["col_labels"][c], fontsize=7)
    fig.suptitle(title + (f" — {examples['title']}" if examples.get("title") else ""), fontsize=9)
    return _save_fig(fig, path)

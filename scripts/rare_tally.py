"""The rare-concept study's declared contrasts tallied over many benchmark runs: for each baseline a contrast
compares against (oversampling the references, random seeds with the label, the real data with logit adjustment,
...), how many came out above it, level with it or below it by the benchmark's own Holm-adjusted verdicts.

  python scripts/rare_tally.py --runs reports/rare/bench-*-k5 --page docs/results.md

The page gets the table between ``<!-- rare-report:rare-tally -->`` and ``<!-- /rare-report:rare-tally -->``, as
scripts/rare_report.py writes its blocks (each run read by its reader, refused in the same words).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import Counter
from pathlib import Path

_spec = importlib.util.spec_from_file_location("rare_report", Path(__file__).with_name("rare_report.py"))
rare_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rare_report)

BLOCK = "rare-tally"
OUTCOMES = ("above", "level", "below")


def outcome(contrast: dict) -> tuple[str, str]:
    """(baseline, above / level / below) of one declared contrast 'A ce − B ce @ group, dose' (or '− real la @ ...')
    from its verdict ('no clear difference' or '<the higher side> higher (Holm p ...)')."""
    a, b = (side.removesuffix(" ce") for side in contrast["contrast"].split(" @ ")[0].split(" − "))
    verdict = contrast["verdict"]
    if verdict.startswith("no clear"):
        return b, "level"
    return b, "above" if verdict.startswith(f"{a} higher") else "below"


def tally(rows: list[dict]) -> str:
    counts, runs = Counter(), {}
    for row in rows:
        for contrast in row["declared"]:
            baseline, result = outcome(contrast)
            counts[baseline, result] += 1
            runs.setdefault(baseline, set()).add(row["run"])
    lines = [f"Declared contrasts of {len(rows)} runs by their baseline (Holm-adjusted within each run): how many of "
             "the arms set against it came out above, level with or below it.", "",
             "| baseline | contrasts | runs | above | level | below |", "|---|---:|---:|---:|---:|---:|"]
    for baseline in runs:
        n = [counts[baseline, o] for o in OUTCOMES]
        lines.append(f"| {baseline} | {sum(n)} | {len(runs[baseline])} | " + " | ".join(map(str, n)) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="benchmark run folders with declared contrasts")
    parser.add_argument("--page", default=None, help="a Markdown page that gets the table")
    args = parser.parse_args(argv)
    try:
        rows = [rare_report.read_run(run) for run in args.runs]
        if not any(row["declared"] for row in rows):
            raise ValueError("none of the runs declared contrasts")
    except ValueError as exc:
        print(f"rare_tally: {exc}", file=sys.stderr)
        return 2
    text = tally(rows)
    if args.page:
        rare_report.update_page(Path(args.page), BLOCK, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

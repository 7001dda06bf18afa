"""How fast each long-running command honours Ctrl-C (SIGINT) and SIGTERM, and what it leaves behind.

    python benchmarks/bench_interrupt.py                       # every command and phase, both signals
    python benchmarks/bench_interrupt.py --commands augment --signals INT --out reports/bench_interrupt.md
    python benchmarks/bench_interrupt.py --load 2              # beside two busy-loop processes (a loaded machine)

Each command runs as its own process (the real CLI, ``python -m seedspace``) into a fresh temporary folder; after
``--after`` seconds (by then it is inside its main loop: training steps, synthesis batches, the calibration grid,
the evaluation) the signal is sent, and the latency is the time from the signal to the process's exit. The table
gives the exit code (130 for SIGINT, 143 for SIGTERM), the latency and what is left: a resumable checkpoint, a run
folder whose run.json says "interrupted", or nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seedspace.hardware import cpu_model  # noqa: E402

SIGNALS = {"INT": (signal.SIGINT, 130), "TERM": (signal.SIGTERM, 143)}


def shapes_npz(path: Path) -> Path:
    """A 3-class data set of 60 noisy 28x28 pictures per class (bright squares at three places)."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for c in range(3):
        for _ in range(60):
            image = rng.integers(0, 60, (28, 28))
            image[4 + 7 * c:12 + 7 * c, 8:20] += 180
            images.append(image.clip(0, 255).astype(np.uint8))
            labels.append(c)
    np.savez(path, images=np.stack(images), labels=np.array(labels))
    return path


def commands(tmp: Path, threads: int) -> dict[str, tuple[list[str], float | None]]:
    """Name -> (arguments of ``seedspace``, seconds before the signal or None for ``--after``); the output goes to
    tmp / name. The phases of ``testbed train`` each get a recipe that is inside that phase at the signal."""
    t = ["--threads", str(threads)]
    data = str(shapes_npz(tmp / "shapes.npz"))
    train = ["testbed", "train", "--data", data, "--fewshot", "5", "--test-references", "5", "--imbalance", "1",
             "--quiet", *t]
    return {
        "testbed train (diffusion)": ([*train, "--out", str(tmp / "diffusion"), "--skip-judge", "--skip-encoder",
                                       "--skip-calibrate", "--steps", "2000"], None),
        "testbed train (judge)": ([*train, "--out", str(tmp / "judge"), "--skip-encoder", "--skip-calibrate",
                                   "--steps", "2", "--classifier-epochs", "400"], None),
        "testbed train (encoder)": ([*train, "--out", str(tmp / "encoder"), "--skip-judge", "--skip-calibrate",
                                     "--steps", "2", "--classifier-epochs", "400"], None),
        "testbed train (calibration)": ([*train, "--out", str(tmp / "calibration"), "--skip-encoder", "--steps", "2",
                                         "--classifier-epochs", "1"], 45.0),
        "augment (inversion)": (["augment", "--testbed-split", "50", "--out", str(tmp / "augment-inversion"),
                                 "--per-class", "400", "--strategy", "paths", "--quiet"], 12.0),
        "augment (synthesis)": (["augment", "--testbed-split", "5", "--out", str(tmp / "augment"), "--per-class",
                                 "400", "--strategy", "paths", "--quiet"], None),  # with torch's threads
        "calibrate": (["calibrate", "--model", "testbed", "--out", str(tmp / "calibrate" / "prior.json"), "--quiet",
                       *t], None),
        "evaluate": (["evaluate", "--quick", "--out", str(tmp / "evaluate"), "--quiet", *t], None),
        "interpolate": (["interpolate", "--seeds", "1,2", "--frames", "2000", "--out", str(tmp / "interpolate"),
                         "--quiet"], None),
    }


def left_behind(folder: Path) -> str:
    if not folder.exists():
        return "nothing"
    record = folder / "run.json"
    if record.is_file():
        return f"run.json status {json.loads(record.read_text()).get('status')!r}"
    if (folder / "checkpoint.safetensors").is_file() or (folder / "training.json").is_file():
        return "a resumable checkpoint"
    if folder.is_file() or folder.suffix == ".json":
        return "a file"
    return f"a folder of {sum(1 for _ in folder.rglob('*'))} entries"


def measure(name: str, args: list[str], sig_name: str, after: float, tmp: Path) -> dict:
    sig, expected = SIGNALS[sig_name]
    out = Path(args[args.index("--out") + 1])
    # as from a terminal: a benchmark started in the background has SIGINT ignored, which its commands would keep
    proc = subprocess.Popen([sys.executable, "-m", "seedspace", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    if proc.poll() is not None:
        return {"command": name, "signal": sig_name, "rc": proc.returncode, "latency": None,
                "left": "finished before the signal", "message": proc.stderr.read().strip()[-200:]}
    sent = time.perf_counter()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    latency = time.perf_counter() - sent
    message = proc.stderr.read().strip().splitlines()
    row = {"command": name, "signal": sig_name, "rc": proc.returncode, "expected_rc": expected,
           "latency": latency, "left": left_behind(out.parent if out.suffix == ".json" else out),
           "message": message[-1] if message else ""}
    for path in out.parent.glob(f"{out.name}*"):  # the next signal starts from nothing
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", default=None, help="comma-separated subset of the commands (default: all)")
    p.add_argument("--signals", default="INT,TERM", help="INT and / or TERM")
    p.add_argument("--after", type=float, default=25.0, help="seconds before the signal")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--load", type=int, default=0, help="busy-loop processes running beside every measurement")
    p.add_argument("--out", default=None, help="write the table (Markdown) here too")
    args = p.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        with tempfile.TemporaryDirectory(prefix="bench_interrupt_") as tmp:
            tmp = Path(tmp)
            table = commands(tmp, args.threads)
            chosen = [c.strip() for c in args.commands.split(",")] if args.commands else list(table)
            rows = [measure(name, table[name][0], s.strip(), table[name][1] or args.after, tmp) for name in chosen
                    for s in args.signals.split(",")]
    finally:
        for proc in busy:
            proc.kill()
    lines = ["| command | signal | exit code | latency s | left behind | last line |", "|---|---|---|---|---|---|"]
    for r in rows:
        latency = "-" if r["latency"] is None else f"{r['latency']:.2f}"
        ok = "" if r.get("expected_rc") in (None, r["rc"]) else f" (expected {r['expected_rc']})"
        lines.append(f"| {r['command']} | SIG{r['signal']} | {r['rc']}{ok} | {latency} | {r['left']} | "
                     f"{r['message'].replace('|', '/')} |")
    text = (f"Machine: {cpu_model()}, {platform.system()} {platform.machine()}; {args.threads} torch threads; "
            f"{args.load} busy-loop neighbour(s); signal after {args.after:g} s (augment's inversion: 12 s, testbed "
            f"train's calibration: 45 s); command: `python benchmarks/{Path(__file__).name} "
            f"{' '.join(sys.argv[1:])}`\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

"""Copy a finished testbed training run into the package (seedspace/testbed/weights) with its testbed.json.

    python scripts/package_testbed.py --diffusion runs/testbed --judge runs/judge --encoder runs/encoder [--guidance 2.0 --steps 50]
"""

import argparse
import json
import shutil
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "seedspace" / "testbed" / "weights"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--diffusion", default="runs/testbed", help="run folder with unet/, scheduler/, training.json")
    p.add_argument("--judge", default="runs/judge", help="run folder with judge.safetensors, fewshot.safetensors")
    p.add_argument("--encoder", default="runs/encoder", help="run folder with encoder.safetensors, training.json")
    p.add_argument("--guidance", type=float, default=2.0, help="default guidance scale of the shipped model")
    p.add_argument("--steps", type=int, default=50, help="default DDIM steps of the shipped model")
    args = p.parse_args()
    diffusion, judge, encoder = Path(args.diffusion), Path(args.judge), Path(args.encoder)
    training = json.loads((diffusion / "training.json").read_text())
    judge_training = json.loads((judge / "training.json").read_text())
    encoder_training = json.loads((encoder / "training.json").read_text())
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    for sub in ("unet", "scheduler"):
        shutil.rmtree(WEIGHTS / sub, ignore_errors=True)
        shutil.copytree(diffusion / sub, WEIGHTS / sub)
    for name in ("judge.safetensors", "fewshot.safetensors"):
        shutil.copy(judge / name, WEIGHTS / name)
    shutil.copy(encoder / "encoder.safetensors", WEIGHTS / "encoder.safetensors")
    counts = training["train_counts"]
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    info = {
        "name": "seedspace-testbed-fmnist-lt",
        "classes": training["classes"],
        "train_counts": counts,
        "head_classes": sorted(order[:3]),
        "tail_classes": sorted(order[-3:]),
        "default_steps": args.steps,
        "default_guidance": args.guidance,
        "diffusion_training": {k: v for k, v in training["diffusion"].items() if k != "loss_history"},
        "judge_training": judge_training["judge"],
        "encoder_training": encoder_training["encoder"],
    }
    (WEIGHTS / "testbed.json").write_text(json.dumps(info, indent=1) + "\n")
    (WEIGHTS / "loss_history.json").write_text(json.dumps(training["diffusion"]["loss_history"]) + "\n")
    print(json.dumps({k: v for k, v in info.items() if k != "diffusion_training"}, indent=1))


if __name__ == "__main__":
    main()

"""Copy a finished `seedspace testbed train` folder into the package, keeping the package's own MODEL_CARD.md and
license notice: the DDPM testbed into seedspace/testbed/weights, the flow-matching testbed (``--as testbed-flow``)
into seedspace/testbed/weights/flow, where it shares the testbed's judge, encoder, few-shot and split files
(``shared_folder`` in its testbed.json; a shared file that differs from the testbed's is refused).

    seedspace testbed train --out runs/testbed --steps 4000 --threads 2
    python scripts/package_testbed.py runs/testbed
    seedspace testbed train --objective flow --out runs/testbed-flow --skip-judge --skip-encoder --threads 2
    python scripts/package_testbed.py runs/testbed-flow --as testbed-flow
"""

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "seedspace" / "testbed" / "weights"
TARGETS = {"testbed": WEIGHTS, "testbed-flow": WEIGHTS / "flow"}
KEEP = {"MODEL_CARD.md", "LICENSE-fashion-mnist.txt"}  # written by hand for the embedded models
SHARED = {"judge.safetensors", "encoder.safetensors", "fewshot.safetensors", "train-longtail.safetensors.gz",
          "test-references.safetensors.gz"}  # the flow testbed's come from the testbed's folder
SKIP = {"training.json", "checkpoint.safetensors"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a complete testbed folder (one with testbed.json)")
    p.add_argument("--as", dest="target", choices=sorted(TARGETS), default="testbed", help="which embedded model")
    args = p.parse_args()
    folder, target = Path(args.folder), TARGETS[args.target]
    if not (folder / "testbed.json").is_file():
        print(f"package_testbed: {folder} is not a finished testbed folder (no testbed.json)", file=sys.stderr)
        return 2
    shared = args.target == "testbed-flow"
    for name in sorted(SHARED & {item.name for item in folder.iterdir()}) if shared else []:
        if not filecmp.cmp(folder / name, WEIGHTS / name, shallow=False):
            print(f"package_testbed: {folder / name} differs from the testbed's {WEIGHTS / name}; the flow testbed "
                  "must share it unchanged", file=sys.stderr)
            return 2
    target.mkdir(exist_ok=True)
    for item in sorted(folder.iterdir()):
        if item.name in KEEP or item.name.startswith(".") or (shared and item.name in SHARED | SKIP):
            continue
        if item.is_dir():
            shutil.rmtree(target / item.name, ignore_errors=True)
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy(item, target / item.name)
    if shared:
        info = json.loads((folder / "testbed.json").read_text())
        (target / "testbed.json").write_text(json.dumps({**info, "shared_folder": ".."}, indent=1) + "\n")
    print(f"copied {folder} into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

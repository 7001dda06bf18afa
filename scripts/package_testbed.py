"""Copy a finished `seedspace testbed train` folder into the package (seedspace/testbed/weights), keeping the
package's own MODEL_CARD.md and license notice.

    seedspace testbed train --out runs/testbed --steps 4000 --threads 2
    python scripts/package_testbed.py runs/testbed
"""

import argparse
import shutil
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "seedspace" / "testbed" / "weights"
KEEP = {"MODEL_CARD.md", "LICENSE-fashion-mnist.txt"}  # written by hand for the embedded model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a complete testbed folder (one with testbed.json)")
    folder = Path(p.parse_args().folder)
    if not (folder / "testbed.json").is_file():
        print(f"package_testbed: {folder} is not a finished testbed folder (no testbed.json)", file=sys.stderr)
        return 2
    for item in sorted(folder.iterdir()):
        if item.name in KEEP or item.name.startswith("."):
            continue
        target = WEIGHTS / item.name
        if item.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(item, target)
        else:
            shutil.copy(item, target)
    print(f"copied {folder} into {WEIGHTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

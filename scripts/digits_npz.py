"""Write scikit-learn's handwritten digits (1,797 8x8 images, 10 classes, shipped inside the scikit-learn wheel) as
an .npz that `seedspace testbed train --data` reads: the documentation's second data set.

    pip install scikit-learn && python scripts/digits_npz.py --out data/digits.npz
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/digits.npz", help="the .npz to write (default: data/digits.npz)")
    args = p.parse_args()
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)  # grey levels 0..16 -> 0..255
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=digits.target.astype(np.int64),
                        classes=np.array([str(c) for c in digits.target_names]),
                        mirror_symmetric=np.array(False))  # a flipped digit is no digit: trainings must not flip
    print(f"wrote {args.out}: {len(images)} images, counts {np.bincount(digits.target).tolist()}")


if __name__ == "__main__":
    main()

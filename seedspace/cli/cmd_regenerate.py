"""``seedspace regenerate``: make a frame again from the ``parameters`` text chunk of its PNG (and, inside its run
folder, the seed files the folder keeps)."""

from __future__ import annotations

from pathlib import Path

from .. import outputs
from ..runs.records import check_frame_record
from . import common
from .runs import regenerate

COMMAND = "regenerate"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="regenerate a frame from its PNG metadata and compare the bytes",
        description="Read the 'parameters' text chunk of a frame written by seedspace, recompute its seed (paths "
                    "are recomputed from the recorded endpoints, method and frame index) and render it again. On "
                    "the CPU the result is byte-identical to the original. A frame inside its run folder takes "
                    "the endpoint seeds from the folder's seed files, so the images and seed files the run read "
                    "need not be where they were; a frame elsewhere needs them at their recorded paths.")
    p.add_argument("frame", help="a PNG frame written by seedspace")
    p.add_argument("--out", default=None, help="output PNG, must not exist (default: outputs/regenerate-NNNNN/<name>)")
    p.add_argument("--model", default=None, help="load the model from here instead of the recorded id")
    p.add_argument("--device", default="cpu", choices=common.DEVICES, help="device")
    p.add_argument("--check", action="store_true", help="exit with code 1 when the bytes differ from the original")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    p.set_defaults(func=run)


def run(args) -> int:
    source = Path(args.frame)
    if not source.is_file():
        raise common.CLIError(f"frame {args.frame} does not exist")
    if args.out is not None and Path(args.out).exists():
        raise FileExistsError(f"{args.out} already exists; choose another --out or remove it")
    text = outputs.read_png_parameters(source)
    check_frame_record(outputs.parse_parameters(text), str(source))  # names the file; regenerate checks it again
    image, new_text = regenerate(text, device=args.device, model_override=args.model, frame_path=source)
    if args.out is not None:
        target = Path(args.out)
        outputs.save_png(target, image, new_text)
    else:
        with outputs.new_run_dir(COMMAND) as folder:
            target = outputs.save_png(folder / source.name, image, new_text)
    same = target.read_bytes() == source.read_bytes()
    print(f"wrote {target}: {'identical to' if same else 'differs from'} {source}")
    return 1 if args.check and not same else 0

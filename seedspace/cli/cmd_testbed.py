"""``seedspace testbed train [...]``: train the embedded testbed (forwards to ``seedspace.testbed.train``)."""

from __future__ import annotations

import argparse

COMMAND = "testbed"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class, add_help=True,
        help="testbed tools: `seedspace testbed train [--help]` trains the embedded model",
        description="Testbed tools. `seedspace testbed train [options]` trains the class-conditional pixel UNet "
                    "and the judge (see `seedspace testbed train --help`).")
    p.add_argument("action", choices=["train"], help="what to do")
    p.add_argument("options", nargs=argparse.REMAINDER, help="options passed to the action")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..testbed.train import main as train_main

    return int(train_main(args.options) or 0)

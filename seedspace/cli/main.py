"""The ``seedspace`` command line: parser, shared error handling and the list of commands.

User errors (bad options, missing files, corrupt images, wrong seed shapes, an existing output folder) print one
line ``seedspace: error: ...`` on stderr and exit with code 2, without a traceback; so do failures of the environment
(a full disk, missing permissions). Ctrl-C exits with 130 and SIGTERM with 143, after the running command has
marked its run.json as interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import signal
import sys
import warnings

from .._version import __version__
from ..checks import RecordError
from ..progress import progress_bars

# One module per command, ``seedspace/cli/cmd_<name>.py``, each with ``register(subparsers, formatter_class)``.
COMMAND_MODULES = ["interpolate", "travel", "centroid", "invert", "norms", "regenerate", "testbed", "seedselect", "evaluate",
                   "augment", "cluster", "calibrate", "ui"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class HelpFormatter(argparse.HelpFormatter):
    """Show every option's default (``(default: X)``) unless its help already talks about the default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or action.nargs == 0 and action.default is False:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: {'off' if action.default is None else '%(default)s'})"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``<prog>: error: <message> (see --help)``, exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seedspace", formatter_class=HelpFormatter,
                    description="Explore the seed (initial-noise) space of diffusion models with norm-aware "
                                "geometry (NAO paths and centroids, inversion, norm diagnostics).",
                    epilog="Every command that loads a model takes --model (default: the embedded testbed), --device "
                           "and --dtype; the seed commands also --class or --prompt, --steps/--num-inference-steps, "
                           "--batch-size, --out and --quiet, and those that render images --guidance-scale and "
                           "--scheduler; run `seedspace <command> "
                           "--help` for all options and defaults.\n\n"
                           "Example: seedspace interpolate --compare --seeds 11,42 --class 3")
    parser.add_argument("--version", action="version", version=f"seedspace {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="<command>", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"seedspace.cli.cmd_{name}").register(sub, HelpFormatter)
    parser.commands = sub.choices  # name -> the command's parser
    return parser


def given_options(command_parser: argparse.ArgumentParser, args) -> list[str]:
    """The destinations of the options given on the command line with a value other than their default."""
    return sorted(k for k, v in vars(args).items() if k != "command" and v != command_parser.get_default(k))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def as_flags(message: str, command_parser: argparse.ArgumentParser) -> str:
    """A library message as the command line says it: the library names parameters (``per_class must be ...``,
    ``pass allow_large``), the command line its flags (``--per-class``). Translated: names with an underscore
    wherever they stand alone (not quoted: quoted names are record fields), one-word names only as the subject of
    a ``must``."""
    flags = {a.dest: f for a in command_parser._actions
             if (f := next((o for o in a.option_strings if o.startswith("--")), None)) not in (None, "--help")}
    for words, dest_prefix in getattr(command_parser, "setting_prefixes", {}).items():  # 'longtail doses' -> --lt-doses
        message = re.sub(rf"(?<![\w'\"./-]){re.escape(words)}(\w+)",
                         lambda m: flags.get(dest_prefix + m[1], m[0]), message)
    message = re.sub(r"(?<![\w'\"./-])(\w+)/(\w+)(?![\w'\"/-])",  # a pair such as height/width
                     lambda m: f"{flags[m[1]]}/{flags[m[2]]}" if m[1] in flags and m[2] in flags else m[0], message)
    for action in command_parser._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None or flag == "--help":
            continue
        name = re.escape(action.dest)
        pattern = rf"(?<![\w'\"./-]){name}(?![\w'\"/-])" if "_" in action.dest else rf"^{name}(?= must )"
        message = re.sub(pattern, flag, message)
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"seedspace: warning: {' '.join(str(message).split())}", file=sys.stderr)


class _NoteFormat(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "warning: " if record.levelno >= logging.WARNING else ""
        return f"seedspace: {level}{record.getMessage()}"


@contextlib.contextmanager
def notes_on_stderr(shown: bool = True):
    """Inside the block, the notes of the ``seedspace`` loggers (INFO: what a command chose for the user, where it
    stands) on stderr, one line each; with ``shown`` False (``--quiet``) only their warnings. The library itself
    adds no handler (Python's convention for libraries): an application configures logging its own way."""
    logger = logging.getLogger("seedspace")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NoteFormat())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if shown else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands so that it unwinds like Ctrl-C (run.json marked interrupted)."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 internal error, 2 bad input, 130 interrupted by
    Ctrl-C, 143 terminated by SIGTERM). Ctrl-C and SIGTERM end with one line at any moment, start-up included.
    A signal the process was started with ignored stays ignored, as ``nohup`` and background jobs of a
    non-interactive shell expect (they start commands with SIGINT ignored: SIGTERM then stops them)."""
    previous = None
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:  # an ignored signal stays ignored (Unix convention)
            previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave SIGTERM alone
        pass
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except Terminated:
        print("seedspace: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("seedspace: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str]) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # torch's note on read-only numpy views (raised inside library code) says nothing about the user's input
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        except ModuleNotFoundError as exc:  # a core install (the geometry alone) has no model stack
            print(f"seedspace: error: the command line needs the models extra ({exc}): "
                  "pip install 'seedspace[models]'", file=sys.stderr)
            return EXIT_USAGE
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if getattr(args, "resume", None) or getattr(args, "retabulate", None):  # settings come from the run's record
            args.given_options = given_options(parser.commands[args.command], args)
        try:
            if getattr(args, "dtype", None) == "auto":  # records keep the dtype that ran, never 'auto'
                from ..backends.loading import dtype_name
                args.dtype = dtype_name("auto", getattr(args, "device", "cpu"))
            with progress_bars(not getattr(args, "quiet", True)), notes_on_stderr(not getattr(args, "quiet", False)):
                return int(args.func(args) or 0)  # a command without --quiet shows no bars, but its notes
        except SystemExit as exc:
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        except (ValueError, OSError) as exc:  # bad input, or the environment (missing file, full disk, permissions)
            if os.environ.get("SEEDSPACE_DEBUG"):
                raise
            message = _one_line(exc)  # a record's keys are not flags
            if not isinstance(exc, RecordError):
                message = as_flags(message, parser.commands[args.command])
            print(f"seedspace: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("SEEDSPACE_DEBUG"):
                raise
            print(f"seedspace: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  f"(set SEEDSPACE_DEBUG=1 for a traceback)", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())

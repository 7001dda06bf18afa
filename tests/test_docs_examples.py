"""Every example on the site (docs/*.md) and in the README runs here, so that a page cannot drift from the code.

- Fenced ```python blocks are executed, each in a fresh namespace, in a scratch folder that holds ``examples/``.
  They run shrunk: every model ``ss.load_model`` returns samples and inverts with ``SEEDSPACE_DOCS_STEPS`` steps
  (default 4) instead of its default 50; ``SEEDSPACE_DOCS_STEPS=full`` runs them exactly as written (minutes).
- Fenced ```bash blocks: every ``seedspace ...`` command (``.venv/bin/seedspace`` too, in ``&&`` chains and with
  ``\\`` continuations) is parsed by the real parser (``build_parser()``), so a renamed option or a bad choice fails;
  the commands in ``RUN`` are also run, with ``--steps`` set the same way and ``--quiet`` added; the others are
  parsed only, for the reason ``PARSED_ONLY`` gives. ``pip install`` lines may name only extras pyproject.toml
  defines, and ``python scripts/X.py`` a script that exists.
- A block opts out with an HTML comment, invisible on the pages, on the line before its fence:
  ``<!-- not-run: the reason -->``; the reason is required. ``<!-- parsed-only: the reason -->`` keeps a bash
  block's seedspace lines parsed by the real parser but runs none of them (a model snapshot the suite has not).
- One claim is checked beyond running: the Python guide's grid has the same pixels as the README's first command.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import seedspace as ss
from seedspace import outputs
from seedspace.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STEPS_TEXT = os.environ.get("SEEDSPACE_DOCS_STEPS", "4")
STEPS = None if STEPS_TEXT == "full" else int(STEPS_TEXT)
OPT_OUT = re.compile(r"^\s*<!--\s*not-run:(.*?)-->\s*$")
PARSE_ONLY = re.compile(r"^\s*<!--\s*parsed-only:(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")

RUN = {"interpolate", "travel", "centroid", "invert", "norms", "cluster"}  # seconds each at a few steps
PARSED_ONLY = {  # command -> why its documented lines are parsed but not run
    "augment": "renders hundreds of images per class",
    "evaluate": "runs the paper's experiments: minutes even with --quick",
    "testbed": "trains a model: minutes to hours",
    "calibrate": "renders hundreds of images per norm",
    "seedselect": "optimises through the sampler for many steps",
    "ui": "starts a web server that runs until stopped",
    "regenerate": "needs a frame that an earlier command wrote",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the not-run reason, None when the block runs
    parse_only: str | None = None  # the parsed-only reason: its command lines are parsed, not run

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(2):
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        opt_out, parse_only = OPT_OUT.match(before), PARSE_ONLY.match(before)
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", opt_out.group(1).strip() if opt_out else None,
                            parse_only.group(1).strip() if parse_only else None))
        i += 1
    return blocks


BLOCKS = [b for page in PAGES for b in fenced_blocks(page)]
PYTHON = [b for b in BLOCKS if b.lang == "python"]
BASH = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]


def commands(block: Block) -> list[list[str]]:
    """The simple commands of a bash block: continuations joined, comments dropped, split at && || ; |."""
    text = re.sub(r"\\\n\s*", " ", block.code)
    out = []
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens + ["&&"]:
            if token in ("&&", "||", ";", "|"):
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
    return out


def seedspace_argv(argv: list[str]) -> list[str] | None:
    """The arguments of a `seedspace ...` command (also .venv/bin/seedspace), None for any other command."""
    return argv[1:] if argv and Path(argv[0]).name == "seedspace" else None


SEEDSPACE_LINES = sorted({(b.name, tuple(a)) for b in BASH if b.skip is None
                          for c in commands(b) if (a := seedspace_argv(c)) is not None}, key=str)
PARSED_ONLY_BLOCKS = {b.name for b in BASH if b.parse_only is not None}


# -- running, once per block or command line ---------------------------------------------------------------
@contextlib.contextmanager
def shrunk_models():
    """ss.load_model returns models that sample and invert with STEPS steps (None: as written)."""
    load = ss.load_model

    def load_model(*args, **kwargs):
        model = load(*args, **kwargs)
        if STEPS is not None:
            model.default_steps = STEPS
        return model

    ss.load_model = load_model
    try:
        yield
    finally:
        ss.load_model = load


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A working folder with the repository's examples/, where the examples write what they write."""
    folder = tmp_path_factory.mktemp("docs-examples")
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def ran(scratch):
    """ran(block) -> the namespace a python block leaves; ran(argv) -> the run folder of a seedspace command.
    Each runs once in this module, however many tests ask."""
    cache: dict = {}

    def run(what):
        key = what if isinstance(what, Block) else tuple(what)
        if key in cache:
            return cache[key]
        previous = Path.cwd()
        os.chdir(scratch)
        try:
            if isinstance(what, Block):
                namespace = {"__name__": "__docs_example__"}
                with shrunk_models():
                    exec(compile(what.code, what.name, "exec"), namespace)
                cache[key] = namespace
            else:
                out = scratch / f"run-{len(cache):02d}"
                argv = list(what) + ["--out", str(out), "--quiet"]
                if STEPS is not None and "--steps" not in argv:
                    argv += ["--steps", str(STEPS)]
                rc = main(argv)
                assert rc == 0, f"`seedspace {shlex.join(what)}` exited with {rc}"
                cache[key] = out
        finally:
            os.chdir(previous)
        return cache[key]

    return run


# -- the tests -------------------------------------------------------------------------------------------
def test_the_pages_hold_examples_and_every_opt_out_says_why():
    assert len(PYTHON) >= 3 and len(SEEDSPACE_LINES) >= 5, (len(PYTHON), len(SEEDSPACE_LINES))
    for block in BLOCKS:
        assert block.skip is None or len(block.skip) >= 10, f"{block.name}: a not-run marker needs its reason"
        assert block.parse_only is None or len(block.parse_only) >= 10 and block.lang != "python", \
            f"{block.name}: a parsed-only marker needs its reason and a bash block"
    markers = sum(bool(OPT_OUT.match(line)) for page in PAGES for line in page.read_text().splitlines())
    assert markers == sum(b.skip is not None for b in BLOCKS), "a not-run marker that is not right before a fence"


@pytest.mark.parametrize("block", [b for b in PYTHON], ids=lambda b: b.name)
def test_python_example_runs(block, ran):
    if block.skip is not None:
        pytest.skip(f"not run: {block.skip}")
    ran(block)


@pytest.mark.parametrize("name, argv", SEEDSPACE_LINES, ids=[f"{n} {' '.join(a[:1])}" for n, a in SEEDSPACE_LINES])
def test_command_line_example_parses_and_runs(name, argv, ran, capsys):
    argv = list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{name}: `seedspace {shlex.join(argv)}` does not parse: {capsys.readouterr().err.strip()}")
    command = args.command
    assert command in RUN or command in PARSED_ONLY, f"{name}: say whether `seedspace {command}` examples run"
    if command in RUN and name not in PARSED_ONLY_BLOCKS:
        folder = ran(argv)
        assert (folder / "run.json").is_file()


@pytest.mark.parametrize("block", BASH, ids=lambda b: b.name)
def test_install_and_script_lines_name_what_exists(block):
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for argv in commands(block):
        if len(argv) > 1 and Path(argv[0]).name in ("pip", "pip3") and argv[1] == "install":
            for token in argv[2:]:
                m = re.fullmatch(r"(\.|seedspace|dist/seedspace\S*\.whl)\[([\w,-]+)\]", token)
                if m:
                    assert set(m.group(2).split(",")) <= extras, f"{block.name}: unknown extra in {token}"
        if argv and Path(argv[0]).name.startswith("python"):
            scripts = [t for t in argv[1:] if t.endswith(".py")]
            for script in scripts[:1]:
                assert (ROOT / script).is_file(), f"{block.name}: {script} does not exist"


def test_install_instructions_are_what_exists():
    """seedspace is not on PyPI: no page says to `pip install seedspace` afresh, and a wheel a page names is the
    one `pip wheel .` builds for this version."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"pip install (-\S+ )*['\"]?seedspace(?![\w\[-])", text), f"{page.name}: pip install seedspace"
        for version in re.findall(r"seedspace-(\d[\w.]*)-py3-none-any\.whl", text):
            assert version == ss.__version__, f"{page.name} names the wheel of {version}, not {ss.__version__}"


def test_the_python_guides_grid_is_the_readme_commands(ran):
    """docs/python.md says its grid's cells are the same pixels as `seedspace interpolate --compare`'s frames."""
    guide = next(b for b in PYTHON if b.page.name == "python.md" and "make_grid" in b.code)
    readme = next(argv for name, argv in SEEDSPACE_LINES
                  if name.startswith("README.md") and argv[:2] == ("interpolate", "--compare"))
    frames = ran(guide)["frames"]
    folder = ran(readme)
    methods = ["lerp", "slerp", "cog", "nao", "nao@chi"]
    files = [folder / "frames" / m / f"frame{j:06d}.png" for m in methods for j in range(9)]
    assert frames.shape[0] == len(files)
    for k, path in enumerate(files):
        assert np.array_equal(outputs.read_png_pixels(path), frames[k]), path.relative_to(folder)

"""Notes are Python logging: the command line shows the ``seedspace`` loggers' INFO lines on stderr unless
--quiet; the library alone adds no handler."""

from __future__ import annotations

import logging

from seedspace.cli.main import main

CLI_NOTE = "seedspace: no --class given; using class 0"  # the command line's own logger
LIBRARY_NOTE = "seedspace: tiny-testbed carries no norm prior"  # run_frames (seedspace.runs.writers)


def test_the_command_line_shows_notes_unless_quiet_and_leaves_logging_as_it_was(tiny_testbed_dir, tmp_path, capsys):
    logger = logging.getLogger("seedspace")
    before = (list(logger.handlers), logger.level)
    argv = ["interpolate", "--seeds", "11,42", "--frames", "3", "--model", str(tiny_testbed_dir)]
    assert main([*argv, "--out", str(tmp_path / "loud")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [any(line.startswith(note) for line in lines) for note in (CLI_NOTE, LIBRARY_NOTE)] == [True, True]
    assert main([*argv, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert "seedspace:" not in capsys.readouterr().err
    assert (list(logger.handlers), logger.level) == before


def test_a_warning_shows_even_when_quiet(tmp_path, capsys):
    logger = logging.getLogger("seedspace.cli")
    from seedspace.cli import main as cli_main

    with cli_main.notes_on_stderr(shown=False):
        logger.info("hidden")
        logger.warning("shown")
    assert capsys.readouterr().err.splitlines() == ["seedspace: warning: shown"]

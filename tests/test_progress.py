"""Progress bars: one scoped switch, hidden by default, shown by the command line unless --quiet."""

from __future__ import annotations

import threading

import seedspace as ss
from seedspace.cli.main import main
from seedspace.progress import command_bar, progress_bar


def shown() -> bool:
    with progress_bar(total=1) as bar:
        return not bar.disable


def test_hidden_unless_a_scope_shows_them_and_restored_after_it():
    assert not shown()
    with ss.progress_bars():
        assert shown()
        with ss.progress_bars(False):  # a command's own bar over the model's hidden step bars
            assert not shown()
        assert shown()
    assert not shown()


def test_a_command_bar_is_shown_and_what_runs_under_it_hidden():
    with ss.progress_bars():
        with command_bar(total=2) as bar:
            assert not bar.disable
            assert not shown()  # the model's step bars beneath it
        assert shown()
    with command_bar(total=2) as bar:  # hidden where the scope hides bars
        assert bar.disable


def test_a_thread_starts_with_bars_hidden():
    seen = []
    with ss.progress_bars():
        thread = threading.Thread(target=lambda: seen.append(shown()))
        thread.start()
        thread.join()
    assert seen == [False]


def test_the_command_line_shows_bars_unless_quiet(tiny_testbed_dir, tmp_path, capsys):
    argv = ["interpolate", "--seeds", "11,42", "--frames", "3", "--model", str(tiny_testbed_dir)]
    assert main([*argv, "--out", str(tmp_path / "loud")]) == 0
    assert "frames: 100%" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert "frames" not in capsys.readouterr().err
    assert not shown()  # the command's scope ended with it

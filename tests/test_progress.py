"""Progress bars: one scoped switch, hidden by default, shown by the command line unless --quiet."""

from __future__ import annotations

import threading

import seedspace as ss
from seedspace.cli.main import main
from seedspace.progress import progress_bar


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

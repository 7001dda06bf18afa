"""scripts/rare_images.py's refusal of a run folder without a benchmark's results.json."""

import importlib.util
from pathlib import Path

import torch

spec = importlib.util.spec_from_file_location("rare_images", Path(__file__).parents[2] / "scripts" / "rare_images.py")
rare_images = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rare_images)


def test_a_folder_without_results_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    for run in (tmp_path / "missing", tmp_path / "broken"):
        threads = str(torch.get_num_threads())  # the script sets it; the suite's own count is kept
        assert rare_images.main(["--runs", str(run), "--name", "x", "--threads", threads]) == 2
        err = capsys.readouterr().err
        assert err == (f"rare_images: --runs: {run / 'results.json'} is not the results.json of a finished long-tail "
                       "benchmark\n")

"""The long-tail benchmark's analysis: the declared contrasts' grammar and refusals, Holm's adjustment, the
sign-flip permutation test and the paired bootstrap over replicates, the draw that keeps the oracle to images the
generator never saw, and classifier flips that follow the data's mirror symmetry."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seedspace.cli.main import main
from seedspace.evaluation import longtail
from seedspace.evaluation.longtail_settings import LongtailSettings
from seedspace.evaluation.paired import bootstrap_interval, holm, sign_flip_p


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04, 0.30 -> 4 x 0.01, max(0.04, 3 x 0.02), max(0.06, 2 x 0.04), max(0.08, 0.30)
    assert np.allclose(holm([0.30, 0.01, 0.04, 0.02]), [0.30, 0.04, 0.08, 0.06])
    assert holm([0.6, 0.6]) == [1.0, 1.0]


def test_sign_flip_is_exact_over_replicates_and_the_bootstrap_pairs_them():
    rng = np.random.default_rng(0)
    assert sign_flip_p([0.1, 0.2, 0.3], rng) == pytest.approx(2 / 8)  # only all-plus and all-minus reach it
    assert sign_flip_p([0.1, -0.1, 0.1, -0.1], rng) == 1.0
    assert sign_flip_p(np.full(20, 0.05), rng) < 1e-3  # Monte Carlo above 16 replicates: (1 + hits) / (1 + B)
    boot = bootstrap_interval([0.1, 0.2, 0.3, 0.4], np.random.default_rng(1))
    assert boot["mean"] == pytest.approx(0.25) and 0.1 <= boot["lo"] < 0.25 < boot["hi"] <= 0.4


@pytest.mark.parametrize("contrast,message", [
    ("paths:slerp - oversample @ few, ce", "names 'paths:slerp', which is not run"),
    ("paths:nao - oversample", "write 'A - B @ group, treatment[, dose]'"),
    ("paths:nao - oversample @ few, cb", "treatment 'cb' is not run on the fill dose"),
    ("paths:nao - oversample @ rare, ce", "unknown group 'rare'"),
    ("paths:nao - oversample @ few, ce, both", "dose 'both' is not run"),
    ("random - random/class @ few, ce", "compares a cell with itself"),
])
def test_a_bad_contrast_is_refused_by_the_settings(contrast, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        LongtailSettings.quick(contrasts=(contrast,))
    with pytest.raises(ValueError, match="runs with several conditions"):
        LongtailSettings(contrasts=("paths:nao - oversample @ few, ce",))


def test_a_contrast_naming_an_arm_not_run_is_one_line_exit_2(tiny_testbed_dir, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--quick", "--experiments", "longtail", "--model", str(tiny_testbed_dir), "--out",
                 str(out), "--lt-contrasts", "paths:slerp - oversample @ few, ce"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "which is not run" in err and not out.exists()


def test_the_draw_takes_unseen_images_first_so_the_oracle_is_unseen():
    cfg = LongtailSettings.quick()  # head 12
    runner = SimpleNamespace(cfg=SimpleNamespace(seed=0), rng=lambda *names: np.random.default_rng(names[-1]))
    unseen, seen = torch.ones(15, 1, 2, 2), torch.zeros(30, 1, 2, 2)
    rep = longtail.draw_replicate(runner, cfg, 0, {0: (unseen, seen), 1: (unseen[:4], seen)}, [12, 3], [1, 0])
    assert (rep.extras[0] == 1).all() and len(rep.extras[0]) == 9 and (rep.train_x[rep.train_y == 0] == 1).all()
    assert rep.drawn[1][:4].eq(1).all() and rep.drawn[1][4:].eq(0).all()  # too few unseen: the seen ones follow


def test_classifier_flips_follow_the_models_mirror_symmetry(monkeypatch):
    recipes = []
    monkeypatch.setattr(longtail, "train_classifier", lambda xs, ys, k, recipe, seed, **kw: recipes.append(recipe)
                        or torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(k)))
    data = SimpleNamespace(test_x=torch.rand(4, 1, 8, 8), test_y=torch.tensor([0, 1, 0, 1]))
    for info, flips in (({}, True), ({"mirror_symmetric": False}, False)):
        runner = SimpleNamespace(model=SimpleNamespace(info=info))
        longtail.train_and_test(runner, LongtailSettings.quick(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]),
                                ("ce", "bs"), 0, data, 2)
        assert [r.flip for r in recipes] == [flips, flips]
        recipes.clear()

"""The benchmark's classifier: fixed-step recipes, class-balanced resampling, balanced softmax and post-hoc logit
adjustment."""

import pytest
import torch

from seedspace.evaluation.classifier import (ClassifierRecipe, batches, epoch_order, log_prior, per_class_accuracy,
                                       predict, train_classifier)


def long_tailed(counts, seed=0):
    """Separable toy classes: class c is a bright square at its own place on a dark 16x16 image, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c, n in enumerate(counts):
        x = torch.rand(n, 1, 16, 16, generator=gen) * 0.3
        x[:, :, 4 * c:4 * c + 4, 4:12] += 0.7
        xs.append(x)
        ys.append(torch.full((n,), c))
    return torch.cat(xs), torch.cat(ys)


def test_fixed_steps_do_not_depend_on_the_data_size():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(torch.tensor([50, 7, 3]))
    got = list(batches(labels, 3, False, 16, 10, gen))
    assert len(got) == 10  # 60 images = 4 batches an epoch: the stream runs on into the next epochs
    assert all(len(b) == 16 for b in got[:3]) and len(got[3]) == 12


def test_balanced_resampling_draws_every_class_equally_often():
    labels = torch.arange(3).repeat_interleave(torch.tensor([900, 90, 10]))
    order = torch.cat([epoch_order(labels, 3, True, torch.Generator().manual_seed(s)) for s in range(5)])
    share = torch.bincount(labels[order], minlength=3).double() / len(order)
    torch.testing.assert_close(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02, rtol=0)


def test_logit_adjustment_subtracts_the_log_prior():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    images = torch.tensor([[0.5, 0.3, 0, 0]]).reshape(1, 1, 2, 2)
    assert predict(net, images).item() == 0
    prior = log_prior(torch.tensor([90, 10]))
    torch.testing.assert_close(prior.exp(), torch.tensor([0.9, 0.1]))
    # log 0.9 - log 0.1 = 2.2 > 0.2: the adjusted rule favours the rare class
    assert predict(net, images, adjust=prior).item() == 1
    with pytest.raises(ValueError, match="at least one real image"):
        log_prior(torch.tensor([5, 0]))


def test_rebalancing_lifts_the_rare_classes_of_a_long_tailed_set():
    """On a 200 / 20 / 4 set, plain CE neglects the rarest class; class-balanced resampling, balanced softmax and
    post-hoc logit adjustment each lift it, measured on a balanced test set."""
    xs, ys = long_tailed([200, 20, 4])
    tx, ty = long_tailed([100, 100, 100], seed=1)
    recipe = ClassifierRecipe(steps=60, batch_size=32, width=4, lr=3e-3, flip=False, shift=0)
    ce = train_classifier(xs, ys, 3, recipe, seed=0)
    counts = torch.bincount(ys, minlength=3)
    rare = {"ce": per_class_accuracy(ce, tx, ty, 3)[2],
            "la": per_class_accuracy(ce, tx, ty, 3, adjust=log_prior(counts))[2],
            "cb": per_class_accuracy(train_classifier(xs, ys, 3, recipe, seed=0, balanced=True), tx, ty, 3)[2],
            "bs": per_class_accuracy(train_classifier(xs, ys, 3, ClassifierRecipe(**{**recipe.as_dict(),
                                     "loss": "balanced-softmax"}), seed=0), tx, ty, 3)[2]}
    assert all(rare[t] > rare["ce"] for t in ("la", "cb", "bs")), rare


def test_recipe_rejects_unknown_losses_and_steps():
    with pytest.raises(ValueError, match="loss"):
        ClassifierRecipe(loss="focal")
    with pytest.raises(ValueError, match="steps"):
        ClassifierRecipe(steps=0)

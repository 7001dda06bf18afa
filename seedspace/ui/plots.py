"""The explorer's norm plot: |x| / sqrt(d) along each seed path against the chi shell where seeds of N(0, I)
live (its mode and central typical interval)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..geometry import ChiPrior

TYPICAL = 0.999


def path_norm_ratios(paths: torch.Tensor) -> np.ndarray:
    """|x| / sqrt(d) of every seed of ``paths`` (P, N, *seed_shape) -> (P, N)."""
    flat = paths.reshape(paths.shape[0], paths.shape[1], -1).double()
    return (flat.norm(dim=-1) / math.sqrt(flat.shape[-1])).numpy()


def norm_plot(paths: torch.Tensor, labels: list[str], xlabel: str = "t"):
    """A matplotlib figure of |x| / sqrt(d) along each path (rows of ``paths`` (P, N, *seed_shape), t evenly
    spaced in [0, 1]), over the chi(d) mode and its central 99.9% interval."""
    import matplotlib  # lazy: heavy to import, and only the page's answers draw

    matplotlib.use("Agg")  # off-screen: the server draws in worker threads
    import matplotlib.pyplot as plt

    ratios = path_norm_ratios(paths)
    d = int(np.prod(paths.shape[2:]))
    prior = ChiPrior(d)
    lo, hi = (v / math.sqrt(d) for v in prior.typical_interval(TYPICAL))
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    ax.axhspan(lo, hi, color="tab:green", alpha=0.15, label=f"chi({d}) typical ({100 * TYPICAL:g}%)")
    ax.axhline(prior.mode / math.sqrt(d), color="tab:green", lw=1, ls="--", label="chi mode")
    t = np.linspace(0.0, 1.0, ratios.shape[1])
    for row, label in zip(ratios, labels):
        ax.plot(t, row, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("|x| / sqrt(d)")
    ax.set_title("seed norms along the paths")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    plt.close(fig)  # the page renders the figure object; pyplot must not keep it
    return fig

"""Training recipes for the embedded testbed: a class-conditional pixel UNet (epsilon prediction, DDPM
linear schedule, classifier-free guidance through a null class) and the judge classifier.

Run as ``seedspace testbed train [--data PATH]`` (or ``python -m seedspace.testbed.train``); training is
seeded, logs to stdout, and writes a diffusers-style folder (``unet/``, ``scheduler/``) plus ``judge.safetensors``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import save, save_file

from ..outputs import atomic_path
from .data import SHIPPED_SPLITS, load_dataset, load_fashion_mnist, long_tail_indices, to_model_space
from .judge import Encoder, Judge

SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
    "prediction_type": "epsilon", "clip_sample": False,
}


def make_unet(num_classes: int):
    """The testbed UNet: ~1.06 M parameters at 32x32, one extra class embedding as the null class."""
    return UNet2DModel(
        sample_size=32, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
        num_class_embeds=num_classes + 1, norm_num_groups=16,
    )


def make_scheduler():
    """The testbed's DDPM noise schedule (linear betas): abar_t = prod_{s <= t} (1 - beta_s), from diffusers."""
    return DDPMScheduler(**SCHEDULER_CONFIG)


def train_diffusion(images: torch.Tensor, labels: torch.Tensor, num_classes: int, out: Path, steps: int = 7000,
                    batch_size: int = 128, lr: float = 1e-3, ema_decay: float = 0.999, cond_drop: float = 0.1,
                    seed: int = 0, bf16: bool = True, log_every: int = 100) -> dict:
    """Epsilon-prediction DDPM training: loss = |eps - eps_theta(sqrt(abar) x0 + sqrt(1-abar) eps, t, y)|^2."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    unet = make_unet(num_classes)
    ema = make_unet(num_classes)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warmup = 200
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    abar = make_scheduler().alphas_cumprod
    n = images.shape[0]
    history, t0, running = [], time.time(), 0.0
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        x0 = images[idx]
        flip = torch.rand(batch_size, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        y = labels[idx].clone()
        y[torch.rand(batch_size, generator=gen) < cond_drop] = num_classes  # null class for CFG
        t = torch.randint(0, abar.numel(), (batch_size,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = unet(xt, t, class_labels=y).sample
        loss = F.mse_loss(pred.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        running += loss.item()
        if step % log_every == 0:
            history.append({"step": step, "loss": running / log_every, "seconds": round(time.time() - t0, 1)})
            print(json.dumps(history[-1]), flush=True)
            running = 0.0
        if step % 1000 == 0 or step == steps:
            save_unet(ema, out)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "cond_drop": cond_drop,
            "seed": seed, "bf16_autocast": bf16, "final_loss": history[-1]["loss"] if history else None,
            "seconds": round(time.time() - t0, 1), "loss_history": history}


def save_unet(unet, out: Path) -> None:
    unet.save_pretrained(out / "unet", safe_serialization=True)
    make_scheduler().save_pretrained(out / "scheduler")


def train_classifier(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor,
                     num_classes: int, out: Path, kind: str = "judge", epochs: int = 4, batch_size: int = 128,
                     seed: int = 0) -> dict:
    """Cross-entropy training (AdamW, one-cycle lr, horizontal flips) of the judge or the encoder
    (``kind``) on a balanced set; writes ``<kind>.safetensors`` and returns its test accuracy."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = {"judge": Judge, "encoder": Encoder}[kind](num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    total = epochs * math.ceil(images.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(images.shape[0], generator=gen)
        for i in range(0, perm.numel(), batch_size):
            idx = perm[i:i + batch_size]
            x = images[idx]
            flip = torch.rand(idx.numel(), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = F.cross_entropy(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = judge_accuracy(net, test_images, test_labels)
        print(json.dumps({f"{kind}_epoch": epoch + 1, "test_accuracy": acc}), flush=True)
    net.eval()
    save_file(net.state_dict(), str(out / f"{kind}.safetensors"), metadata={"num_classes": str(num_classes)})
    return {"epochs": epochs, "test_accuracy": acc, "seed": seed}


@torch.no_grad()
def judge_accuracy(judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose arg-max class is their label."""
    judge.eval()
    preds = torch.cat([judge(images[i:i + 1000]).argmax(1) for i in range(0, images.shape[0], 1000)])
    return float((preds == labels).float().mean())


def fewshot_indices(labels: np.ndarray, per_class: int = 100, seed: int = 0) -> np.ndarray:
    """Sorted indices of the few-shot set: ``per_class`` random images of each class (seeded)."""
    rng = np.random.default_rng(seed)
    classes = range(int(labels.max()) + 1)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]))


def write_fewshot(out: Path, per_class: int = 100, seed: int = 0) -> None:
    """The few-shot set: ``per_class`` random Fashion-MNIST test images of each class, as uint8 safetensors."""
    images, labels = load_fashion_mnist("test")
    keep = fewshot_indices(labels, per_class, seed)
    save_file({"images": torch.from_numpy(images[keep].copy()), "labels": torch.from_numpy(labels[keep]),
               "test_indices": torch.from_numpy(keep)}, str(out / "fewshot.safetensors"))


def write_shipped_splits(out: Path, imbalance: float = 100.0, seed: int = 0, fewshot_per_class: int = 100) -> None:
    """The splits :func:`~seedspace.testbed.data.shipped_split` reads, built from the Fashion-MNIST package:
    the long-tailed training split (:func:`long_tail_indices`) and the test set minus the few-shot set, each as
    gzip'd safetensors (uint8 images, int64 labels and source indices; fixed gzip header: same bytes each time)."""
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rows = {"train": long_tail_indices(train_labels, imbalance, seed=seed),
            "test": np.setdiff1d(np.arange(len(test_labels)), fewshot_indices(test_labels, fewshot_per_class, seed))}
    sources = {"train": (train_images, train_labels), "test": (test_images, test_labels)}
    for file, split in SHIPPED_SPLITS.values():
        images, labels = sources[split]
        keep = rows[split]
        data = save({"images": torch.from_numpy(images[keep].copy()), "labels": torch.from_numpy(labels[keep]),
                     "source_indices": torch.from_numpy(keep.astype(np.int64))})
        with atomic_path(Path(out) / file) as tmp:
            tmp.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="seedspace testbed train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="training data: .npz (images, labels) or class folder (default: Fashion-MNIST)")
    p.add_argument("--out", default="runs/testbed", help="output folder (default: runs/testbed)")
    p.add_argument("--steps", type=int, default=7000, help="diffusion training steps (default: 7000)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    p.add_argument("--imbalance", type=float, default=100.0, help="long-tail imbalance ratio, 1 = balanced (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--skip-judge", action="store_true", help="do not train the judge")
    p.add_argument("--skip-encoder", action="store_true", help="do not train the encoder (SeedSelect's features)")
    p.add_argument("--skip-diffusion", action="store_true", help="do not train the diffusion model")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw, labels, classes = load_dataset(args.data)
    keep = long_tail_indices(labels, args.imbalance, seed=args.seed) if args.imbalance > 1 else np.arange(len(labels))
    counts = np.bincount(labels[keep], minlength=len(classes)).tolist()
    card = {"classes": classes, "train_counts": counts, "imbalance": args.imbalance, "data": args.data or "fashion-mnist"}
    print(json.dumps(card), flush=True)
    if args.data is None:
        write_fewshot(out, seed=args.seed)
        write_shipped_splits(out, args.imbalance, seed=args.seed)
    if not (args.skip_judge and args.skip_encoder):
        if args.data is None:
            test_raw, test_labels = load_fashion_mnist("test")
        else:  # hold out 10% of the given set
            perm = np.random.default_rng(args.seed).permutation(len(labels))
            cut = len(labels) // 10
            test_raw, test_labels = raw[perm[:cut]], labels[perm[:cut]]
            raw, labels = raw[perm[cut:]], labels[perm[cut:]]
            keep = long_tail_indices(labels, args.imbalance, seed=args.seed) if args.imbalance > 1 else np.arange(len(labels))
        data = (to_model_space(raw), torch.as_tensor(labels), to_model_space(test_raw), torch.as_tensor(test_labels))
        for kind, seed in (("judge", args.seed), ("encoder", args.seed + 1)):
            if not getattr(args, f"skip_{kind}"):
                card[kind] = train_classifier(*data, len(classes), out, kind, seed=seed)
    if not args.skip_diffusion:
        card["diffusion"] = train_diffusion(to_model_space(raw[keep]), torch.as_tensor(labels[keep]), len(classes), out,
                                            steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    (out / "training.json").write_text(json.dumps(card, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

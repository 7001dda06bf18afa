"""Training recipes of a testbed: the class-conditional pixel UNet (epsilon prediction on a DDPM linear schedule,
or velocity prediction with a rectified-flow objective; classifier-free guidance through a null class) with checkpoints that resume to the same bytes, and the judge and
encoder classifiers. :func:`seedspace.testbed.build.train_testbed` puts them together into a testbed folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler, UNet2DModel
from safetensors import safe_open
from safetensors.torch import save

from ..outputs import atomic_path
from ..progress import progress_bar
from .judge import Encoder, Judge
from .recipe import UNET_CHANNELS, TestbedRecipe

SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
    "prediction_type": "epsilon", "clip_sample": False,
}
FLOW_SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "shift": 1.0}
WARMUP_STEPS = 200
ACTIVATION_FLOATS = 32  # activations kept per channel and pixel of a UNet level (norms, convolutions, skips)


def make_unet(num_classes: int, image_size: int = 32, channels=UNET_CHANNELS) -> UNet2DModel:
    """The testbed UNet: one ResNet layer per level, attention only in the middle block, one extra class embedding
    as the null class; ~1.06 M parameters at 32x32 with the default channels (32, 64, 64)."""
    channels = tuple(int(c) for c in channels)
    return UNet2DModel(
        sample_size=image_size, in_channels=1, out_channels=1, block_out_channels=channels, layers_per_block=1,
        down_block_types=("DownBlock2D",) * len(channels), up_block_types=("UpBlock2D",) * len(channels),
        num_class_embeds=num_classes + 1, norm_num_groups=min(16, math.gcd(*channels)),
    )


def training_bytes(num_classes: int, image_size: int, channels, batch_size: int) -> int:
    """A rough upper estimate of the memory a training of this size holds, before anything is allocated: the
    UNet's parameters counted on the meta device, five float32 copies of them (weights, EMA, gradients, two Adam
    moments), plus ACTIVATION_FLOATS float32 activations per channel and pixel of each level per image kept for
    the backward pass. Exact counting would need the allocator; this only has to catch absurd recipes."""
    with torch.device("meta"):
        params = sum(p.numel() for p in make_unet(num_classes, image_size, channels).parameters())
    pixels_per_image = sum(c * (image_size // 2 ** level) ** 2 for level, c in enumerate(channels))
    return 4 * (5 * params + ACTIVATION_FLOATS * batch_size * pixels_per_image)


def make_scheduler(objective: str = "epsilon"):
    """The testbed's schedule, from diffusers: for ``epsilon`` the DDPM noise schedule (linear betas,
    abar_t = prod_{s <= t} (1 - beta_s)); for ``flow`` the flow-matching Euler schedule (x_sigma = (1 - sigma) x_0 +
    sigma eps, timestep = 1000 sigma, no shift)."""
    if objective == "flow":
        return FlowMatchEulerDiscreteScheduler(**FLOW_SCHEDULER_CONFIG)
    return DDPMScheduler(**SCHEDULER_CONFIG)


def learning_rate_factor(step: int, steps: int) -> float:
    """Linear warm-up over 200 steps, then cosine decay to 2% of the base rate at ``steps``."""
    return min(1.0, (step + 1) / WARMUP_STEPS) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))


def noisy_batch(x0: torch.Tensor, abar: torch.Tensor | None, gen: torch.Generator):
    """One training batch (x_t, timestep, target). DDPM (``abar`` given): t ~ U{0..T-1}, x_t = sqrt(abar_t) x0 +
    sqrt(1 - abar_t) eps, target eps. Rectified flow (``abar`` None): s ~ U(0, 1), x_s = (1 - s) x0 + s eps,
    timestep 1000 s, target eps - x0."""
    n = x0.shape[0]
    if abar is None:
        sigma = torch.rand(n, generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1)
        return (1 - s) * x0 + s * eps, sigma * FLOW_SCHEDULER_CONFIG["num_train_timesteps"], eps - x0
    t = torch.randint(0, abar.numel(), (n,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    a = abar[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps, t, eps


def train_diffusion(images: torch.Tensor, labels: torch.Tensor, num_classes: int, checkpoint: Path,
                    recipe: TestbedRecipe = TestbedRecipe(), checkpoint_every: int = 250,
                    mirror: bool = True) -> tuple[UNet2DModel, dict]:
    """Epsilon-prediction DDPM training, loss = |eps - eps_theta(sqrt(abar) x0 + sqrt(1-abar) eps, t, y)|^2, or
    (``recipe.objective="flow"``) rectified flow, loss = |(eps - x0) - v_theta((1 - s) x0 + s eps, 1000 s, y)|^2
    with s ~ U(0, 1); the class dropped to the null class with probability ``cond_drop``; returns the EMA weights
    and a summary. The recipe's steps, batch_size, lr, ema_decay, cond_drop, seed, bf16, image_size, channels and
    objective apply. ``mirror``: random horizontal flips (only for data whose classes are mirror-symmetric; the
    draw is made either way, so the noise stream is the same).

    Images (N, 1, 32, 32) in [-1, 1] (resized to ``image_size`` when it differs). The full training state (weights,
    EMA, optimiser, schedule, random generators, loss history) goes to ``checkpoint`` every ``checkpoint_every``
    steps, at the end, and after Ctrl-C / SIGTERM: a signal during a step's forward and backward pass abandons that
    step at once (the checkpoint is the state before it, random generators included), one during the update waits
    for the update to end. An existing checkpoint is continued, and the result is the same bytes as an
    uninterrupted run on the CPU.
    """
    steps, batch_size, lr, seed, objective = recipe.steps, recipe.batch_size, recipe.lr, recipe.seed, recipe.objective
    ema_decay, cond_drop, bf16 = recipe.ema_decay, recipe.cond_drop, recipe.bf16
    image_size, channels = recipe.image_size, recipe.channels
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    unet = make_unet(num_classes, image_size, channels)
    ema = make_unet(num_classes, image_size, channels)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: learning_rate_factor(s, steps))
    state = {"step": 0, "running": 0.0, "history": [], "seconds": 0.0}
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, unet, ema, opt, sched, gen)
    if image_size != images.shape[-1]:
        images = F.interpolate(images, size=(image_size, image_size), mode="area")
    abar = None if objective == "flow" else make_scheduler().alphas_cumprod
    log_every = min(100, steps)
    n, started = images.shape[0], time.time() - state["seconds"]
    with progress_bar(total=steps, initial=state["step"], desc="diffusion", unit="step",
                      dynamic_ncols=True) as bar, DeferredInterrupts() as interrupts:
        for step in range(state["step"] + 1, steps + 1):
            step_start = gen.get_state(), torch.get_rng_state()
            try:  # nothing the checkpoint holds changes before opt.step(): a signal here abandons the step at once
                with interrupts.immediate():
                    idx = torch.randint(0, n, (batch_size,), generator=gen)
                    x0 = images[idx]
                    flip = (torch.rand(batch_size, generator=gen) < 0.5) & mirror
                    x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
                    y = labels[idx].clone()
                    y[torch.rand(batch_size, generator=gen) < cond_drop] = num_classes  # null class for CFG
                    xt, t, target = noisy_batch(x0, abar, gen)
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        pred = unet(xt, t, class_labels=y).sample
                    loss = F.mse_loss(pred.float(), target)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            except KeyboardInterrupt:  # the state of the last finished step, its random generators included
                gen.set_state(step_start[0])
                torch.set_rng_state(step_start[1])
                state["seconds"] = time.time() - started
                save_checkpoint(checkpoint, unet, ema, opt, sched, gen, state)
                raise
            opt.step()
            sched.step()
            decay = min(ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), unet.parameters()):
                    pe.lerp_(p, 1 - decay)
            state["running"] += loss.item()
            state["step"] = step
            if step % log_every == 0:
                state["history"].append({"step": step, "loss": state["running"] / log_every,
                                         "seconds": round(time.time() - started, 1)})
                state["running"] = 0.0
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            bar.update(1)
            if step % checkpoint_every == 0 or step == steps or interrupts.pending:
                state["seconds"] = time.time() - started
                save_checkpoint(checkpoint, unet, ema, opt, sched, gen, state)
            interrupts.raise_pending()
    history = state["history"]
    return ema, {"objective": objective, "steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "cond_drop": cond_drop,
                 "seed": seed, "bf16_autocast": bf16, "final_loss": history[-1]["loss"] if history else None,
                 "seconds": round(time.time() - started, 1), "loss_history": history}


def save_checkpoint(path: Path, unet, ema, opt, sched, gen: torch.Generator, state: dict) -> None:
    """The whole training state in one safetensors file (tensors, plus the rest as JSON in its metadata), written
    atomically: weights, EMA weights, optimiser moments, lr schedule, both random generators, ``state``."""
    tensors = {f"unet.{k}": v for k, v in unet.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt_state = opt.state_dict()
    other = {}
    for pid, entries in opt_state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{pid}.{key}"] = value
            else:
                other[f"{pid}.{key}"] = value
    tensors["generator"], tensors["torch_rng"] = gen.get_state(), torch.get_rng_state()
    meta = {"state": state, "param_groups": opt_state["param_groups"], "opt_other": other,
            "scheduler": sched.state_dict()}
    data = save({k: v.detach().contiguous() for k, v in tensors.items()}, metadata={"training": json.dumps(meta)})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def load_checkpoint(path: Path, unet, ema, opt, sched, gen: torch.Generator) -> dict:
    """Restore what :func:`save_checkpoint` wrote into freshly built objects; returns the saved ``state``.
    ValueError for a file that is not such a checkpoint (truncated, damaged, or of another recipe)."""
    try:
        return _restore(path, unet, ema, opt, sched, gen)
    except Exception as exc:  # safetensors, JSON, key and shape errors alike: the file is not what was saved
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot resume from {path}: it is not a readable training checkpoint ({reason}); "
                         "delete it to train again from step 0") from None


def _restore(path: Path, unet, ema, opt, sched, gen: torch.Generator) -> dict:
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["training"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    opt_state = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    for key, value in meta["opt_other"].items():
        pid, name = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = value
    for group in meta["param_groups"]:
        group["betas"] = tuple(group["betas"])
    opt.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["scheduler"])
    gen.set_state(tensors["generator"])
    torch.set_rng_state(tensors["torch_rng"])
    return meta["state"]


class DeferredInterrupts(contextlib.AbstractContextManager):
    """Ctrl-C / SIGTERM inside the block are held until :meth:`raise_pending` (between two training steps, so the
    checkpoint is never taken mid-update), except inside :meth:`immediate`, where they act at once; a second signal
    acts at once. Outside the main thread: no effect."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.pending, self.previous, self.deliver_now = None, {}, False
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._hold) for sig in self.SIGNALS
                             if signal.getsignal(sig) is not signal.SIG_IGN}
        return self

    def _hold(self, signum, frame):
        if self.pending is not None or self.deliver_now:
            self._deliver(signum, frame)
        self.pending = (signum, frame)

    @contextlib.contextmanager
    def immediate(self):
        """Inside this block a signal acts at once (the block's work is abandoned and must be safe to drop)."""
        self.deliver_now = True
        try:
            if self.pending is not None:
                self.raise_pending()
            yield
        finally:
            self.deliver_now = False

    def raise_pending(self) -> None:
        """Let a held signal act now (its previous handler runs; KeyboardInterrupt where it had none)."""
        if self.pending is not None:
            self._deliver(*self.pending)

    def _deliver(self, signum, frame):
        handler = self.previous.get(signum)
        self.__exit__(None, None, None)
        if callable(handler):
            handler(signum, frame)
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
        return None


def train_classifier(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor,
                     num_classes: int, kind: str = "judge", epochs: int = 4, batch_size: int = 128,
                     seed: int = 0, mirror: bool = True) -> tuple[torch.nn.Module, dict]:
    """Cross-entropy training (AdamW, one-cycle lr, horizontal flips where ``mirror``) of the judge or the encoder
    (``kind``) on a balanced set of images (N, 1, 32, 32) in [-1, 1]; returns the network (eval mode) and its test
    accuracy."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = {"judge": Judge, "encoder": Encoder}[kind](num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    batches = math.ceil(images.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * batches)
    with progress_bar(total=epochs * batches, desc=kind, unit="batch", dynamic_ncols=True) as bar:
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(images.shape[0], generator=gen)
            for i in range(0, perm.numel(), batch_size):
                idx = perm[i:i + batch_size]
                x = images[idx]
                flip = (torch.rand(idx.numel(), generator=gen) < 0.5) & mirror
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                loss = F.cross_entropy(net(x), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update(1)
            accuracy = judge_accuracy(net, test_images, test_labels)
            bar.set_postfix(test_accuracy=f"{accuracy:.3f}")
    return net.eval(), {"epochs": epochs, "test_accuracy": accuracy, "seed": seed}


@torch.no_grad()
def judge_accuracy(judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose arg-max class is their label."""
    judge.eval()
    preds = torch.cat([judge(images[i:i + 1000]).argmax(1) for i in range(0, images.shape[0], 1000)])
    return float((preds == labels).float().mean())

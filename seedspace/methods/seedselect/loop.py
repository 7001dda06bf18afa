"""The SeedSelect optimisation: AdamW on the seeds, one loss evaluation through the sampler per step."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from ...backends.base import conditions_list
from ...progress import progress_bar, progress_bars
from ...runs.record import folder_lock
from .checkpoints import FORMAT, load_step, open_run_dir, save_step, write_history
from .features import FeatureFn, resolve_feature_fn
from .initialisation import initial_seeds
from .objective import SeedSelectTarget, make_target, seedselect_loss
from .references import ImageSet, reference_sets
from .settings import SeedSelectSettings

StepCallback = Callable[[int, dict, torch.Tensor, torch.Tensor], None]


@dataclass
class SeedSelectResult:
    """What :func:`seedselect` returns.

    - ``seed``: the optimised seeds (N, *seed_shape) after the last step; ``image``: their images (N, C, H, W)
      in [0, 1].
    - ``history``: one dict per step 0..steps (step 0 = the initial seeds): ``step``, ``loss``, ``semantic``,
      ``appearance`` (means over the batch), ``losses``/``semantics``/``appearances`` (per seed), ``lr`` (of
      the update that follows), ``seconds`` (compute time of this step: forward, backward and update) and
      ``elapsed`` (wall time since the start, initialisation included); these two are saved to
      ``timings.json``, not ``history.json``, and may be missing from the steps of a run resumed without it.
    - ``init``: the initialisation used; ``init_seed``: the initial seeds; ``init_seconds``: the time spent
      finding them (inversion, centroid, candidate scoring); ``out_dir``: where the steps were saved, or None;
      ``config``: the settings as recorded in ``history.json``.
    """

    seed: torch.Tensor
    image: torch.Tensor
    history: list[dict]
    init: str
    init_seed: torch.Tensor
    init_seconds: float
    out_dir: Path | None = None
    config: dict = field(default_factory=dict)

    @property
    def losses(self) -> list[float]:
        """The mean loss of every step, step 0 first."""
        return [h["loss"] for h in self.history]

    @property
    def steps(self) -> int:
        """The last step run."""
        return self.history[-1]["step"] if self.history else 0


def seedselect(model, reference_images: ImageSet | Sequence[torch.Tensor], condition=None, *,
               settings: SeedSelectSettings | None = None, feature_fn: FeatureFn | str | Path | None = None,
               out_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
               save_images: bool = True, callback: StepCallback | None = None, **options) -> SeedSelectResult:
    """Optimise seeds so the model's images match ``reference_images`` (>= 2 real images in [0, 1]), minimising
    semantic_weight * (1 - cos of features) + appearance_weight * MSE to the mean encoded reference.

    Args:
        model: a seedspace model (:class:`~seedspace.SeedModel`).
        reference_images: (K, C, H, W) tensor in [0, 1], a list of (C, H, W) tensors or image files, or a
            folder of images (one reference set), or a list of (K_j, C, H, W) tensors (one set per seed,
            optimised in one batch).
        condition: the class / prompt (one for all seeds, or a list with one per seed).
        settings: a :class:`SeedSelectSettings` (default: the published settings, init 'nao-centroid').
        **options: fields of :class:`SeedSelectSettings` as keywords (``steps=...``, ``prior=...``); they override
            ``settings``.
        feature_fn: callable images -> features, a local CLIP folder, or None for the model's own features.
        out_dir: save every step there (``step_XXXX.safetensors``: seeds, per-seed loss terms, AdamW moments;
            ``step_XXXX.png``; ``history.json``), atomically.
        resume: continue from the last saved step in ``out_dir`` (exactly: the AdamW moments are restored);
            the settings in ``CONFIG_KEYS_MUST_MATCH`` and the references must be those of the saved run.
        overwrite: allow starting afresh in an ``out_dir`` that already holds a run (its files are replaced).
        save_images: also write ``step_XXXX.png`` into ``out_dir``.
        callback: ``callback(step, record, seeds, images)`` after each step's forward pass (before the update).
    """
    settings = dataclasses.replace(settings or SeedSelectSettings(), **options)
    sets = reference_sets(model, reference_images)
    init = settings.init
    batch_of_seeds = isinstance(init, torch.Tensor) and init.ndim == len(model.seed_shape) + 1
    n = len(sets) if len(sets) > 1 else (init.shape[0] if batch_of_seeds else settings.num_seeds)
    if len(sets) > 1 and settings.num_seeds not in (1, len(sets)):
        raise ValueError(f"num_seeds={settings.num_seeds} with {len(sets)} reference sets: one seed per set")
    conditions = conditions_list(condition, n)
    settings = settings.for_model(model)
    model.noise_predictor(conditions, settings.guidance)  # checks the condition(s) before any work
    feature_fn = resolve_feature_fn(model, feature_fn)

    t_start = time.perf_counter()
    target = make_target(model, sets, feature_fn)
    if len(sets) == 1 and n > 1:
        target = target.repeat_row(0, n)
    config = _config(model, settings, conditions, n, sets, target)
    out = Path(out_dir).expanduser() if out_dir is not None else None
    lock = contextlib.ExitStack()
    if out is not None:  # two processes never write one out_dir
        out.mkdir(parents=True, exist_ok=True)
        lock.enter_context(folder_lock(out))
    with lock:
        saved, history, init_seconds = open_run_dir(out, config, resume, overwrite) if out is not None else (None, [], 0.0)
        if saved is not None:
            start = int(saved["step"][0])
            config["init"] = saved["config"].get("init", config["init"])
            init_seed = load_step(out, 0)["seeds"] if (out / "step_0000.safetensors").is_file() else saved["seeds"]
            current = saved["seeds"].float()
            if tuple(current.shape) != (n, *model.seed_shape):
                raise ValueError(f"cannot resume {out}: saved seeds have shape {tuple(current.shape)}, expected "
                                 f"{(n, *model.seed_shape)}")
            elapsed_before = history[-1].get("elapsed", init_seconds) if history else init_seconds
        else:
            start = 0
            with progress_bars(False):  # the optimisation has its bar; the model's step bars stay hidden
                current = initial_seeds(model, settings, sets, conditions, target, feature_fn)
            init_seconds = time.perf_counter() - t_start
            init_seed = current.clone()
            elapsed_before = init_seconds
            if out is not None:
                write_history(out, config, init_seconds, history)

        x = current.to(model.device, torch.float32).clone().requires_grad_(True)
        opt = torch.optim.AdamW([x], lr=settings.lr, weight_decay=settings.weight_decay)
        if saved is not None and float(saved["adamw_step"][0]) > 0:
            opt.state[x] = {"step": torch.tensor(float(saved["adamw_step"][0])),
                            "exp_avg": saved["adamw_exp_avg"].to(model.device).clone(),
                            "exp_avg_sq": saved["adamw_exp_avg_sq"].to(model.device).clone()}

        steps = settings.steps
        bar = progress_bar(range(start, steps + 1), desc="seedselect", initial=start, total=steps + 1)
        wall0 = time.perf_counter()
        images = None
        for step in bar:
            t0 = time.perf_counter()
            update = step < steps
            with torch.set_grad_enabled(update), progress_bars(False):
                losses, sem, app, x0 = seedselect_loss(model, x, target, conditions, feature_fn, settings, checkpoint=True)
            if update:
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
            with torch.no_grad():
                images = model.decode(x0.detach()).float().cpu()
            losses, sem, app = (t.detach().float().cpu() for t in (losses, sem, app))
            record = {"step": step, "loss": float(losses.mean()), "semantic": float(sem.mean()),
                      "appearance": float(app.mean()), "losses": losses.tolist(), "semantics": sem.tolist(),
                      "appearances": app.tolist(), "lr": settings.lr_at(step) if update else None}
            if callback is not None:
                callback(step, record, x.detach(), images)
            if out is not None:
                save_step(out, step, x, opt.state.get(x, {}), record, images if save_images else None)
            if update:
                for group in opt.param_groups:
                    group["lr"] = settings.lr_at(step)
                opt.step()
            record["seconds"] = time.perf_counter() - t0
            record["elapsed"] = elapsed_before + (time.perf_counter() - wall0)
            history.append(record)
            if out is not None:
                write_history(out, config, init_seconds, history)
            bar.set_postfix(loss=f"{record['loss']:.4f}", sem=f"{record['semantic']:.4f}",
                            app=f"{record['appearance']:.4f}")
        bar.close()

        return SeedSelectResult(seed=x.detach().cpu(), image=images, history=history, init=config["init"],
                                init_seed=init_seed.detach().cpu(), init_seconds=init_seconds, out_dir=out, config=config)


def _config(model, settings: SeedSelectSettings, conditions: list, n: int, sets: list[torch.Tensor],
            target: SeedSelectTarget) -> dict:
    """The run's settings as recorded in ``history.json`` (and compared on resume)."""
    return {"init": settings.init if isinstance(settings.init, str) else "tensor", "steps": settings.steps,
            "lr": settings.lr, "lr_decay": settings.lr_decay, "lr_decay_after": settings.lr_decay_after,
            "weight_decay": settings.weight_decay, "semantic_weight": settings.semantic_weight,
            "appearance_weight": settings.appearance_weight, "step_weights": list(settings.step_weights),
            "sampler_steps": settings.sampler_steps, "guidance": settings.guidance,
            "conditions": [str(c) for c in conditions], "num_seeds": n,
            "num_references": [int(s.shape[0]) for s in sets], "model": model.name,
            "target_checksum": target.checksum(), "format": FORMAT,
            # the default sampler and prior are left out so that runs recorded before they existed still resume
            **({"scheduler": settings.scheduler} if settings.scheduler not in (None, "ddim") else {}),
            **({"prior": settings.prior} if settings.prior is not None else {})}

"""The sampler room: every deterministic sampler seedspace runs, chosen by name, and the inversion that fits each
model kind.

- ``ddim`` (the default for epsilon / v-prediction models) is seedspace's own trailing DDIM with float64 noise
  levels (:mod:`seedspace.backends.ddim`): the reference every other sampler is tested against.
- ``dpmpp-2m``, ``euler``, ``heun``, ``unipc``, ``deis`` run the diffusers scheduler of that name on the model's
  training schedule, with trailing timesteps (sampling starts at the last training step, as DDIM does).
- ``flow-euler`` (the default for flow-matching models such as SD3 and Flux) runs diffusers' flow-matching Euler
  scheduler with the model's own shift settings; ``flow-heun`` its second-order Heun scheduler (2 network
  evaluations per step except the last, on the same sigma grid; only for a fixed shift: models that shift their
  schedule by resolution, such as Flux, refuse it).

Stochastic samplers (ancestral, SDE, DDPM) draw fresh noise at every step, so a seed would no longer fix its image:
they are refused. Inversion: DDIM inversion for epsilon / v-prediction models, reverse Euler for flow models
(``flow-heun``: reverse Heun, the mirror of the Heun sampler). :func:`network_evaluations` counts what a sampler
costs (NFE: one guided network evaluation per scheduled timestep).

A model used here has ``prediction_type`` ('epsilon', 'v_prediction' or 'flow'), ``model_prediction(conditions,
guidance) -> f(x, t)`` (the raw guided network output), ``scheduler_config`` (its training schedule as a diffusers
scheduler config) and ``timestep_options(steps)`` (extra ``set_timesteps`` arguments, e.g. Flux's shift ``mu``);
epsilon / v models also ``noise_predictor`` and ``alphas_cumprod`` for DDIM.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..progress import progress_bar
from .ddim import StepCallback, ddim_invert, ddim_sample

NetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# name -> (diffusers class, settings on top of the model's training schedule)
DIFFUSION_SCHEDULERS = {
    "ddim": ("DDIMScheduler", {"set_alpha_to_one": True, "clip_sample": False, "steps_offset": 0}),
    "dpmpp-2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": ("EulerDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
}
FLOW_SCHEDULERS = {
    "flow-euler": ("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": False}),
    "flow-heun": ("FlowMatchHeunDiscreteScheduler", {}),
}
STOCHASTIC_SCHEDULERS = ("ddpm", "euler-ancestral", "euler-a", "dpmpp-2s-ancestral", "dpmpp-sde", "dpmpp-2m-sde",
                         "dpmpp-3m-sde", "dpm2-ancestral", "lcm", "tcd")
SCHEDULERS = tuple(DIFFUSION_SCHEDULERS) + tuple(FLOW_SCHEDULERS)
INVERTIBLE = {"ddim": "DDIM inversion", "flow-euler": "reverse Euler", "flow-heun": "reverse Heun"}
SAMPLER_LABELS = {"ddim": "DDIM", "dpmpp-2m": "DPM++ 2M", "euler": "Euler", "heun": "Heun", "unipc": "UniPC",
                  "deis": "DEIS", "flow-euler": "Euler (flow matching)", "flow-heun": "Heun (flow matching)"}


def eps_from_velocity(velocity: NetFn, num_train_timesteps: int) -> NetFn:
    """The noise predictor of a flow model: eps(x, t) = x + (1 - sigma) v(x, t), sigma = t / T (from
    x_sigma = (1 - sigma) x_0 + sigma eps and v = eps - x_0)."""

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        return x + (1 - t / num_train_timesteps).to(x.dtype) * velocity(x, t)

    return eps


def default_scheduler(prediction_type: str) -> str:
    """'flow-euler' for flow-matching models, 'ddim' for epsilon / v-prediction models."""
    return "flow-euler" if prediction_type == "flow" else "ddim"


def check_scheduler(name: str | None, prediction_type: str, model_name: str = "this model") -> str:
    """The scheduler name to run (None: the model kind's default); ValueError for an unknown or stochastic one, or
    one that does not fit the model (a flow scheduler on an epsilon / v model, or the reverse)."""
    if name is None:
        return default_scheduler(prediction_type)
    name = str(name).strip().lower()
    if name in STOCHASTIC_SCHEDULERS:
        raise ValueError(f"scheduler {name!r} is stochastic: it draws fresh noise at every step, so a seed would no "
                         f"longer fix its image; choose a deterministic one ({', '.join(SCHEDULERS)})")
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    fits = FLOW_SCHEDULERS if prediction_type == "flow" else DIFFUSION_SCHEDULERS
    if name not in fits:
        kind = "a flow-matching model" if prediction_type == "flow" else f"a {prediction_type}-prediction model"
        raise ValueError(f"scheduler {name!r} does not fit {model_name}, {kind}; choose one of {', '.join(fits)}")
    return name


def check_inversion(name: str | None, prediction_type: str, model_name: str = "this model") -> str:
    """:func:`check_scheduler`, and a ValueError for a sampler that has no inversion."""
    name = check_scheduler(name, prediction_type, model_name)
    if name not in INVERTIBLE:
        fits = default_scheduler(prediction_type)
        raise ValueError(f"scheduler {name!r} has no inversion; {model_name} inverts with {fits!r} ({INVERTIBLE[fits]})")
    return name


def scheduler_label(name: str | None) -> str:
    """The sampler's name as image metadata shows it (web-UI style); no name means DDIM, the old default."""
    return SAMPLER_LABELS.get(name or "ddim", name)


def make_scheduler(name: str, config: dict, prediction_type: str):
    """A fresh diffusers scheduler ``name`` built on a model's training-schedule ``config`` (a dict)."""
    # diffusers takes seconds to import: only when a model samples with it
    import diffusers

    if name in FLOW_SCHEDULERS:
        cls_name, settings = FLOW_SCHEDULERS[name]
    else:
        cls_name, settings = DIFFUSION_SCHEDULERS[name]
        settings = {**settings, "prediction_type": prediction_type, "timestep_spacing": "trailing",
                    "thresholding": False}
    cls = getattr(diffusers, cls_name)
    takes = inspect.signature(cls.__init__).parameters  # a config of another scheduler class may hold more keys
    config = {k: v for k, v in dict(config).items() if not k.startswith("_") and k in takes}
    return cls.from_config({**config, **settings})


def schedule_config(alphas_cumprod: torch.Tensor) -> dict:
    """A scheduler config reproducing a training schedule from its cumulative alphas:
    beta_t = 1 - abar_t / abar_{t-1} (abar_{-1} = 1)."""
    abar = alphas_cumprod.double()
    betas = 1 - abar / torch.cat([abar.new_ones(1), abar[:-1]])
    return {"num_train_timesteps": abar.numel(), "trained_betas": betas.tolist()}


def _x0_estimate(model, x_in: torch.Tensor, out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean-sample estimate of one network output: flow x0 = x - sigma v (sigma = t / T); VP models
    x0 = (x - sqrt(1 - abar) eps) / sqrt(abar), with abar at a fractional t from the linearly interpolated
    sigma = sqrt((1 - abar) / abar) (as Euler's scheduler interpolates)."""
    num_train = int(model.scheduler_config.get("num_train_timesteps", 1000))
    t = t.double().cpu()
    if model.prediction_type == "flow":
        return x_in - (t / num_train).to(x_in.dtype) * out
    abar = model.alphas_cumprod.double().cpu()
    sigma_table = ((1 - abar) / abar).sqrt()
    lo = t.floor().long().clamp(0, abar.numel() - 1)
    hi = (lo + 1).clamp(max=abar.numel() - 1)
    sigma = sigma_table[lo] + (t - lo) * (sigma_table[hi] - sigma_table[lo])
    a = (1 / (1 + sigma ** 2)).to(x_in.dtype)
    if model.prediction_type == "v_prediction":
        return a.sqrt() * x_in - (1 - a).sqrt() * out
    return (x_in - (1 - a).sqrt() * out) / a.sqrt()


def scheduler_sample(model, net: NetFn, seeds: torch.Tensor, scheduler, steps: int,
                     checkpoint: bool = False, callback: StepCallback | None = None) -> torch.Tensor:
    """Run a diffusers ``scheduler`` from x_T = seeds (unit-variance noise) to x_0 with the network ``net(x, t)``.

    x <- step(net(scale(x, t), t), t, x) for each scheduled t, starting from seeds * init_noise_sigma.
    checkpoint=True recomputes only the network call in the backward pass; the scheduler's state (its step index,
    multistep history) stays out of the recomputation. ``callback(i, x, x0_hat)`` sees every network evaluation.
    """
    scheduler.set_timesteps(steps, device=seeds.device, **model.timestep_options(steps))
    x = seeds * getattr(scheduler, "init_noise_sigma", 1.0)
    for i, t in enumerate(progress_bar(scheduler.timesteps, desc="denoising", leave=False)):
        x_in = scheduler.scale_model_input(x, t) if hasattr(scheduler, "scale_model_input") else x
        use_checkpoint = checkpoint and torch.is_grad_enabled()
        out = _checkpoint(net, x_in, t, use_reentrant=False) if use_checkpoint else net(x_in, t)
        x0_hat = _x0_estimate(model, x_in, out, t) if callback is not None else None
        x = scheduler.step(out, t, x, return_dict=False)[0]
        if callback is not None:
            callback(i, x, x0_hat)
    return x


def flow_invert(net: NetFn, x0: torch.Tensor, scheduler, steps: int, timestep_options: dict,
                heun: bool = False) -> torch.Tensor:
    """Reverse Euler along the sampler's own sigma grid: x_{sigma_i} = x_{sigma_{i+1}} + (sigma_i - sigma_{i+1})
    v(x_{sigma_{i+1}}, t_i), the velocity taken at the noise level being entered (as DDIM inversion does).

    ``heun=True``: reverse Heun, the mirror of the Heun sampler (which ends with one Euler step): that first step as
    above, then x~ = x + h v(x, t_{i+1}), x <- x + h (v(x, t_{i+1}) + v(x~, t_i)) / 2 with h = sigma_i - sigma_{i+1}
    (2 steps - 1 network evaluations, as the sampler)."""
    scheduler.set_timesteps(steps, device=x0.device, **timestep_options)
    sigmas, timesteps = scheduler.sigmas.to(x0.device), scheduler.timesteps
    x = x0
    for i in progress_bar(range(len(timesteps) - 1, -1, -1), desc="inverting", leave=False):
        h = (sigmas[i] - sigmas[i + 1]).to(x.dtype)
        if not heun or i == len(timesteps) - 1:
            x = x + h * net(x, timesteps[i])
            continue
        d1 = net(x, timesteps[i + 1])
        x = x + h * (d1 + net(x + h * d1, timesteps[i])) / 2
    return x


def _check_flow_heun(model, steps: int) -> None:
    """ValueError unless the flow-matching Heun scheduler's sigma grid is the model's own (Euler) grid: it has no
    resolution shift (``mu``) nor custom sigmas, so models that use them (Flux, SD3.5) cannot run it."""
    options = model.timestep_options(steps)
    euler = make_scheduler("flow-euler", model.scheduler_config, "flow")
    euler.set_timesteps(steps, **options)
    grid = make_scheduler("flow-heun", model.scheduler_config, "flow")
    grid.set_timesteps(steps)
    own = torch.cat([grid.sigmas[:1], grid.sigmas[1:-1:2], grid.sigmas[-1:]])
    if options or own.shape != euler.sigmas.shape or not torch.allclose(own.cpu().float(), euler.sigmas.cpu().float(),
                                                                        atol=1e-6):
        raise ValueError(f"scheduler 'flow-heun' does not fit {model.name}: its schedule shifts with the resolution "
                         "or uses custom sigmas, which diffusers' flow-matching Heun does not take; use 'flow-euler'")


def sampler_fits(model, name: str) -> bool:
    """True when the named sampler runs on the model: a deterministic one that fits its kind (epsilon / v or flow)
    and, for 'flow-heun', its schedule (no resolution shift)."""
    try:
        if check_scheduler(name, model.prediction_type, model.name) == "flow-heun":
            _check_flow_heun(model, 2)
    except ValueError:
        return False
    return True


def network_evaluations(model, scheduler: str | None, steps: int, inversion: bool = False) -> int:
    """NFE: the guided network evaluations of the named sampler (or, with ``inversion``, its inversion) at ``steps``:
    one per scheduled timestep, e.g. ``steps`` for DDIM, DPM++ 2M, Euler, UniPC; 2 steps - 1 for Heun (two per step
    except the last)."""
    name = (check_inversion if inversion else check_scheduler)(scheduler, model.prediction_type, model.name)
    steps = int(steps)
    if name == "ddim" or (inversion and name == "flow-euler"):
        return steps
    if inversion:  # flow-heun: one Euler step, then Heun
        return 2 * steps - 1
    sched = make_scheduler(name, model.scheduler_config, model.prediction_type)
    sched.set_timesteps(steps, **({} if name == "flow-heun" else model.timestep_options(steps)))
    return len(sched.timesteps)


def sample(model, seeds: torch.Tensor, conditions: Sequence, steps: int, guidance: float,
           scheduler: str | None = None, checkpoint: bool = False, callback: StepCallback | None = None) -> torch.Tensor:
    """Seeds -> x_0 with the named sampler (None: the model's default); see :func:`scheduler_sample`."""
    name = check_scheduler(scheduler, model.prediction_type, model.name)
    if name == "ddim":
        eps = model.noise_predictor(conditions, guidance)
        return ddim_sample(eps, seeds, model.alphas_cumprod, steps, checkpoint, callback)
    if name == "flow-heun":
        _check_flow_heun(model, steps)
    sched = make_scheduler(name, model.scheduler_config, model.prediction_type)
    return scheduler_sample(model, model.model_prediction(conditions, guidance), seeds, sched, steps, checkpoint,
                            callback)


def invert(model, x0: torch.Tensor, conditions: Sequence, steps: int, guidance: float,
           scheduler: str | None = None) -> torch.Tensor:
    """x_0 -> seeds with the inversion of the named sampler: DDIM inversion ('ddim'), reverse Euler ('flow-euler')
    or reverse Heun ('flow-heun'), all on the sampler's own grid; ValueError for a sampler that has no inversion."""
    name = check_inversion(scheduler, model.prediction_type, model.name)
    if name == "ddim":
        return ddim_invert(model.noise_predictor(conditions, guidance), x0, model.alphas_cumprod, steps)
    if name == "flow-heun":
        _check_flow_heun(model, steps)
    sched = make_scheduler("flow-euler", model.scheduler_config, model.prediction_type)  # the sigma grid
    return flow_invert(model.model_prediction(conditions, guidance), x0, sched, steps, model.timestep_options(steps),
                       heun=name == "flow-heun")

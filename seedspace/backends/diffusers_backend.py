"""diffusers models behind the ``SeedModel`` protocol: Stable Diffusion 1.x/2.x/XL pipelines (prompts, VAE
latents), SD3 and Flux (see :mod:`~seedspace.backends.flow_backend`) and pixel ``UNet2DModel`` folders. Loaded from a local folder, or from the local Hugging Face cache
for a hub id: seedspace never downloads at run time."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import torch

from .flow_backend import FLOW_PIPELINES
from .latent import LatentPromptModel
from .pixel import PixelUNetModel
from .prior_store import cached_prior_path

SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline", *FLOW_PIPELINES, "DDPMPipeline",
                       "DDIMPipeline")


def _not_found(name: str) -> ValueError:
    return ValueError(
        f"model {name!r} is not a local folder and is not in the local Hugging Face cache (seedspace never downloads); "
        f"fetch it once with `hf download {name}` (into the cache, where --model {name} then finds it) or "
        f"`hf download {name} --local-dir models/x` and pass --model models/x"
    )


def load_diffusers_model(name: str, device: torch.device, dtype: torch.dtype, **kwargs):
    """A local diffusers folder or cached hub id -> ``LatentDiffusionModel``, ``SD3Model``, ``FluxModel`` or
    ``PixelUNetModel``, whose calibrated prior is looked up in the per-model cache
    (:mod:`~seedspace.backends.prior_store`); ValueError for an unsupported pipeline class or a missing component."""
    model = _load_diffusers_model(name, device, dtype, **kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        model.prior_path = cached_prior_path(name, path)
    else:  # a hub id, loaded from the local cache: its snapshot folder names the revision
        from huggingface_hub import snapshot_download

        model.prior_path = cached_prior_path(name, snapshot_download(name, local_files_only=True))
    return model


def _load_diffusers_model(name: str, device: torch.device, dtype: torch.dtype, **kwargs):
    # diffusers takes seconds to import: only when a model is loaded
    from diffusers import DDPMScheduler, DiffusionPipeline, UNet2DModel

    path = Path(name).expanduser()
    looks_like_path = path.exists() or name.startswith((".", "/", "~")) or path.suffix or name.count("/") != 1
    if looks_like_path and not path.exists():
        raise ValueError(f"model path {name} does not exist")
    if path.is_dir() and not (path / "model_index.json").exists():
        unet_dir = path / "unet" if (path / "unet" / "config.json").exists() else path
        if not (unet_dir / "config.json").exists():
            raise ValueError(f"{name} is not a diffusers model folder (no model_index.json or config.json)")
        if json.loads((unet_dir / "config.json").read_text()).get("_class_name") != "UNet2DModel":
            raise ValueError(f"{name}: only UNet2DModel folders or pipelines are supported")
        unet = UNet2DModel.from_pretrained(unet_dir).to(device=device, dtype=dtype)
        sched_dir = path / "scheduler"
        scheduler = DDPMScheduler.from_pretrained(sched_dir) if sched_dir.exists() else DDPMScheduler()
        return PixelUNetModel(unet, scheduler.alphas_cumprod, name=name, **kwargs)
    optional = _check_pipeline_folder(path, name) if path.is_dir() else {}
    try:
        with warnings.catch_warnings():  # newer diffusers renamed torch_dtype to dtype; older ones know only torch_dtype
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = DiffusionPipeline.from_pretrained(str(path) if path.exists() else name, torch_dtype=dtype,
                                                     local_files_only=True, **optional)
    except (OSError, EnvironmentError) as exc:
        if path.exists():
            raise ValueError(f"cannot load diffusers pipeline from {name}: {str(exc).splitlines()[0]}") from None
        raise _not_found(name) from None
    pipe.set_progress_bar_config(disable=True)
    pipe.to(dtype=dtype)  # some components (e.g. SD3's transformer) can load in float32 whatever torch_dtype says
    kind = type(pipe).__name__
    if kind not in SUPPORTED_PIPELINES:
        raise _unsupported(name, kind)
    if kind in FLOW_PIPELINES:
        return FLOW_PIPELINES[kind](pipe.to(device), name=name, **kwargs)
    if not hasattr(pipe.scheduler, "alphas_cumprod"):
        raise ValueError(f"{name}: only DDPM-family (epsilon / v-prediction) schedulers are supported, not "
                         f"{type(pipe.scheduler).__name__}")
    if getattr(pipe, "vae", None) is None:
        return PixelUNetModel(pipe.unet.to(device), pipe.scheduler.alphas_cumprod, name=name, **kwargs)
    return LatentDiffusionModel(pipe.to(device), name=name, **kwargs)


def _unsupported(name: str, kind: str | None) -> ValueError:
    return ValueError(f"{name}: pipeline class {kind} is not supported; seedspace runs "
                      f"{', '.join(SUPPORTED_PIPELINES)} and UNet2DModel folders")


def _check_pipeline_folder(path: Path, name: str) -> dict:
    """Check a pipeline folder before loading it: a supported class, and a folder for every component its
    model_index.json lists. Returns the components the index leaves out (e.g. SD3's T5), to load as None."""
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path / 'model_index.json'}: {exc}") from None
    if index.get("_class_name") not in SUPPORTED_PIPELINES:
        raise _unsupported(name, index.get("_class_name"))
    listed = {k: v for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2}
    missing = [k for k, v in listed.items() if v[0] is not None and not (path / k).is_dir()]
    if missing:
        raise ValueError(f"{name} lacks the component folder(s) {', '.join(missing)} that its model_index.json lists")
    return {k: None for k, v in listed.items() if v[0] is None}


class LatentDiffusionModel(LatentPromptModel):
    """A Stable Diffusion (1.x, 2.x, XL) pipeline: seeds are VAE latents, conditions are prompts."""

    def __init__(self, pipe, name: str, negative_prompt: str = "", height: int | None = None,
                 width: int | None = None, default_steps: int = 50, default_guidance: float = 7.5,
                 batch_size: int = 4):
        super().__init__(pipe, pipe.unet, pipe.unet.config.in_channels, name, negative_prompt, height, width,
                         default_steps, default_guidance, batch_size)
        self.unet = self.denoiser
        self.is_xl = hasattr(pipe, "text_encoder_2")
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.float()
        self.prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")

    def _encode_prompt(self, prompt: str, negative_prompt: str):
        """(cond, uncond[, pooled_cond, pooled_uncond]); an empty negative prompt is the pipeline's default (None:
        SDXL then uses zeros where its config says so)."""
        if self.is_xl:
            return self.pipe.encode_prompt(prompt, device=self.device, num_images_per_prompt=1,
                                           do_classifier_free_guidance=True, negative_prompt=negative_prompt or None)
        return self.pipe.encode_prompt(prompt, self.device, 1, True, negative_prompt)

    def noise_predictor(self, prompts: Sequence[str], guidance: float):
        """eps(x, t) = eps_u + g (eps_c - eps_u) from the UNet (v-prediction converted to epsilon)."""
        return self._guided(prompts, guidance, to_epsilon=True)

    def model_prediction(self, prompts: Sequence[str], guidance: float):
        """The raw guided UNet output (epsilon or v, as ``prediction_type`` says) at any scheduler timestep t."""
        return self._guided(prompts, guidance, to_epsilon=False)

    def _guided(self, prompts: Sequence[str], guidance: float, to_epsilon: bool):
        embeds = [self._embed(p) for p in prompts]
        cond = torch.cat([e[0] for e in embeds])
        uncond = torch.cat([e[1] for e in embeds])
        extra_c = extra_u = None
        if self.is_xl:
            time_ids = torch.tensor([[self.height, self.width, 0, 0, self.height, self.width]], device=self.device,
                                    dtype=cond.dtype).repeat(len(prompts), 1)
            extra_c = {"text_embeds": torch.cat([e[2] for e in embeds]), "time_ids": time_ids}
            extra_u = {"text_embeds": torch.cat([e[3] for e in embeds]), "time_ids": time_ids}

        def unet(x, t, text, extra):
            out = self.unet(x.to(self.dtype), t, encoder_hidden_states=text, added_cond_kwargs=extra).sample.to(x.dtype)
            if to_epsilon and self.prediction_type == "v_prediction":
                a = self.alphas_cumprod[t].to(x.dtype)
                out = a.sqrt() * out + (1 - a).sqrt() * x
            return out

        both_text = torch.cat([cond, uncond])
        both_extra = extra_c and {k: torch.cat([extra_c[k], extra_u[k]]) for k in extra_c}

        def eps(x: torch.Tensor, t: int) -> torch.Tensor:
            if guidance == 1.0:
                return unet(x, t, cond, extra_c)
            e_c, e_u = unet(torch.cat([x, x]), t, both_text, both_extra).chunk(2)
            return e_u + guidance * (e_c - e_u)

        return eps

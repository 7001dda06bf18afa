"""diffusers models behind the ``SeedModel`` protocol: Stable Diffusion 1.x/2.x/XL pipelines (prompts, VAE
latents) and pixel ``UNet2DModel`` folders. Loaded from a local folder, or from the local Hugging Face cache
for a hub id: seedspace never downloads at run time."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .ddim_model import DDIMModel
from .pixel import PixelUNetModel


def _not_found(name: str) -> ValueError:
    return ValueError(
        f"model {name!r} is not a local folder and is not in the local Hugging Face cache (seedspace never downloads); "
        f"fetch it once, e.g. `huggingface-cli download {name} --local-dir models/x`, then pass --model models/x"
    )


def load_diffusers_model(name: str, device: torch.device, dtype: torch.dtype, **kwargs):
    """A local diffusers folder or cached hub id -> ``LatentDiffusionModel`` or ``PixelUNetModel``."""
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
    try:
        with warnings.catch_warnings():  # newer diffusers renamed torch_dtype to dtype; older ones know only torch_dtype
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = DiffusionPipeline.from_pretrained(str(path) if path.exists() else name, torch_dtype=dtype,
                                                     local_files_only=True)
    except (OSError, EnvironmentError) as exc:
        if path.exists():
            raise ValueError(f"cannot load diffusers pipeline from {name}: {str(exc).splitlines()[0]}") from None
        raise _not_found(name) from None
    pipe.set_progress_bar_config(disable=True)
    if not hasattr(pipe.scheduler, "alphas_cumprod"):
        raise ValueError(f"{name}: only DDPM-family (epsilon / v-prediction) schedulers are supported, not "
                         f"{type(pipe.scheduler).__name__}")
    if getattr(pipe, "vae", None) is None:
        return PixelUNetModel(pipe.unet.to(device), pipe.scheduler.alphas_cumprod, name=name, **kwargs)
    return LatentDiffusionModel(pipe.to(device), name=name, **kwargs)


class LatentDiffusionModel(DDIMModel):
    """A Stable Diffusion (1.x, 2.x, XL) pipeline: seeds are VAE latents, conditions are prompts."""

    conditioning = "prompt"

    def __init__(self, pipe, name: str, negative_prompt: str = "", height: int | None = None,
                 width: int | None = None, default_steps: int = 50, default_guidance: float = 7.5,
                 batch_size: int = 4):
        self.pipe, self.name, self.negative_prompt = pipe, name, negative_prompt
        self.unet, self.vae = pipe.unet.eval(), pipe.vae.eval()
        self.unet.requires_grad_(False)
        self.vae.requires_grad_(False)
        self.is_xl = hasattr(pipe, "text_encoder_2")
        scale = pipe.vae_scale_factor
        size = self.unet.config.sample_size * scale
        self.height, self.width = height or size, width or size
        if self.height % scale or self.width % scale:
            raise ValueError(f"height and width must be multiples of {scale}")
        self.seed_shape = (self.unet.config.in_channels, self.height // scale, self.width // scale)
        self.image_shape = (int(self.vae.config.in_channels), self.height, self.width)
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.float()
        self.prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")
        self.default_steps, self.default_guidance, self.batch_size = default_steps, default_guidance, batch_size
        self._embeddings: dict[tuple[str, str], tuple] = {}

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def class_index(self, condition) -> int | None:
        """Prompt models have no classes: always a ValueError."""
        raise ValueError(f"{self.name} takes text prompts, not classes")

    def _embed(self, prompt: str):
        """(cond, uncond[, pooled_cond, pooled_uncond]) text embeddings of one prompt, cached."""
        key = (prompt, self.negative_prompt)
        if key not in self._embeddings:
            with torch.no_grad():
                if self.is_xl:
                    self._embeddings[key] = self.pipe.encode_prompt(prompt, device=self.device, num_images_per_prompt=1,
                                                                    do_classifier_free_guidance=True,
                                                                    negative_prompt=self.negative_prompt)
                else:
                    self._embeddings[key] = self.pipe.encode_prompt(prompt, self.device, 1, True, self.negative_prompt)
        return self._embeddings[key]

    def noise_predictor(self, prompts: Sequence[str], guidance: float):
        """eps(x, t) = eps_u + g (eps_c - eps_u) from the UNet (v-prediction converted to epsilon)."""
        embeds = [self._embed(p if p is not None else "") for p in prompts]
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
            if self.prediction_type == "v_prediction":
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

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> scaled VAE latents (posterior mean)."""
        x = images.to(self.device, self.vae.dtype) * 2 - 1
        return (self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor).float()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled VAE latents -> images in [0, 1]."""
        x = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    def prepare_image(self, image) -> np.ndarray:
        """A PIL image -> float array (3, H, W) in [0, 1] at the model's size."""
        image = image.convert("RGB")
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.BICUBIC)
        return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0

"""Flow-matching text-to-image pipelines behind the ``SeedModel`` protocol: Stable Diffusion 3 / 3.5 and Flux.1.

Flow matching: x_sigma = (1 - sigma) x_0 + sigma eps and the network predicts the velocity v = eps - x_0, so
x_0 = x_sigma - sigma v and eps = x_sigma + (1 - sigma) v. Seeds are the unpacked latents (C, H / s, W / s) that
users see in every tool (Flux packs 2x2 patches only for its transformer), drawn as diffusers draws them, so
seed 42 here is ``generator=torch.Generator("cpu").manual_seed(42)`` in the pipeline.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .latent import LatentPromptModel
from .sampling import eps_from_velocity


class FlowMatchingModel(LatentPromptModel):
    """Shared by SD3 and Flux: velocity prediction, flow-matching schedulers, reverse-Euler inversion."""

    prediction_type = "flow"

    def noise_predictor(self, conditions: Sequence, guidance: float):
        """eps(x, t) = x + (1 - sigma) v(x, t) with sigma = t / T (the protocol's noise predictor)."""
        return eps_from_velocity(self.model_prediction(conditions, guidance),
                                 self.scheduler_config.get("num_train_timesteps", 1000))

    def _shift_mu(self, image_seq_len: int) -> float:
        """The resolution-dependent shift of schedulers with dynamic shifting (diffusers' ``calculate_shift``)."""
        # diffusers takes seconds to import: only when a flow model samples
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        c = self.scheduler_config
        return calculate_shift(image_seq_len, c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096),
                               c.get("base_shift", 0.5), c.get("max_shift", 1.15))


class SD3Model(FlowMatchingModel):
    """A StableDiffusion3Pipeline (SD3 / SD3.5; the T5 encoder optional) with classifier-free guidance."""

    def __init__(self, pipe, name: str, default_steps: int = 28, default_guidance: float = 7.0, **kwargs):
        super().__init__(pipe, pipe.transformer, pipe.transformer.config.in_channels, name,
                         default_steps=default_steps, default_guidance=default_guidance,
                         size_multiple=pipe.transformer.config.patch_size, **kwargs)

    def _encode_prompt(self, prompt: str, negative_prompt: str):
        """(cond, uncond, pooled_cond, pooled_uncond) as the pipeline encodes them."""
        return self.pipe.encode_prompt(prompt=prompt, prompt_2=None, prompt_3=None, device=self.device,
                                       num_images_per_prompt=1, do_classifier_free_guidance=True,
                                       negative_prompt=negative_prompt or None)

    def timestep_options(self, steps: int) -> dict:
        """``mu`` for schedulers with dynamic shifting (SD3.5 configs), from the number of image patches."""
        if not self.scheduler_config.get("use_dynamic_shifting"):
            return {}
        p = self.denoiser.config.patch_size
        return {"mu": self._shift_mu((self.seed_shape[1] // p) * (self.seed_shape[2] // p))}

    def model_prediction(self, prompts: Sequence[str], guidance: float):
        """The velocity v(x, t) with classifier-free guidance v_u + g (v_c - v_u) (one pass when g == 1)."""
        embeds = [self._embed(p) for p in prompts]
        cond, uncond, pooled, pooled_u = (torch.cat([e[k] for e in embeds]) for k in range(4))

        def transformer(x, t, text, pool):
            t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
            return self.denoiser(hidden_states=x.to(self.dtype), timestep=t, encoder_hidden_states=text,
                                 pooled_projections=pool, return_dict=False)[0].to(x.dtype)

        def velocity(x: torch.Tensor, t) -> torch.Tensor:
            if guidance == 1.0:
                return transformer(x, t, cond, pooled)
            v_u, v_c = transformer(torch.cat([x, x]), t, torch.cat([uncond, cond]),
                                   torch.cat([pooled_u, pooled])).chunk(2)  # the pipeline's order
            return v_u + guidance * (v_c - v_u)

        return velocity


class FluxModel(FlowMatchingModel):
    """A FluxPipeline (Flux.1 dev / schnell): guidance is the distilled guidance the transformer embeds
    (ignored by models without ``guidance_embeds``), not classifier-free guidance, so the negative prompt is unused
    and inversion keeps the model's guidance."""

    def __init__(self, pipe, name: str, default_steps: int = 28, default_guidance: float = 3.5, **kwargs):
        # the pipeline's default size is a constant 128 latents; the VAE's sample size is the same 1024 pixels on
        # the released checkpoints and follows smaller models
        super().__init__(pipe, pipe.transformer, pipe.transformer.config.in_channels // 4, name,
                         default_steps=default_steps, default_guidance=default_guidance, size_multiple=2,
                         sample_size=pipe.vae.config.sample_size // pipe.vae_scale_factor, **kwargs)

    @property
    def inversion_guidance(self) -> float:
        """No classifier-free guidance to switch off: inversion uses the model's distilled guidance."""
        return self.default_guidance

    def _encode_prompt(self, prompt: str, negative_prompt: str):
        """(T5 embeddings, pooled CLIP embedding, text position ids) as the pipeline encodes them."""
        return self.pipe.encode_prompt(prompt=prompt, prompt_2=None, device=self.device, num_images_per_prompt=1)

    def timestep_options(self, steps: int) -> dict:
        """The pipeline's sigma grid linspace(1, 1 / steps, steps) and its resolution shift ``mu``."""
        packed_len = (self.seed_shape[1] // 2) * (self.seed_shape[2] // 2)
        return {"sigmas": np.linspace(1.0, 1 / steps, steps), "mu": self._shift_mu(packed_len)}

    def model_prediction(self, prompts: Sequence[str], guidance: float):
        """The velocity v(x, t) on unpacked latents: pack 2x2 patches, run the transformer, unpack."""
        embeds = [self._embed(p) for p in prompts]
        text, pooled, text_ids = torch.cat([e[0] for e in embeds]), torch.cat([e[1] for e in embeds]), embeds[0][2]
        c, h, w = self.seed_shape
        pipe = self.pipe

        def velocity(x: torch.Tensor, t) -> torch.Tensor:
            n = x.shape[0]
            packed = pipe._pack_latents(x.to(self.dtype), n, c, h, w)
            t = torch.as_tensor(t, device=x.device).expand(n).to(packed.dtype)
            g = torch.full([n], guidance, device=x.device, dtype=torch.float32) \
                if self.denoiser.config.guidance_embeds else None
            image_ids = pipe._prepare_latent_image_ids(n, h // 2, w // 2, x.device, packed.dtype)
            out = self.denoiser(hidden_states=packed, timestep=t / 1000, guidance=g, pooled_projections=pooled,
                                encoder_hidden_states=text, txt_ids=text_ids, img_ids=image_ids, return_dict=False)[0]
            return pipe._unpack_latents(out, self.height, self.width, pipe.vae_scale_factor).to(x.dtype)

        return velocity


FLOW_PIPELINES = {"StableDiffusion3Pipeline": SD3Model, "FluxPipeline": FluxModel}

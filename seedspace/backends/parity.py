"""The diffusers pipeline's own output for seedspace seeds: the reference that shows a diffusers-backed model
samples as its pipeline does (used by the parity tests and scripts/gpu_check.py)."""

from __future__ import annotations

import torch

from .sampling import check_scheduler, make_scheduler


@torch.no_grad()
def pipeline_output(model, seeds: torch.Tensor, prompt: str, steps: int, guidance: float,
                    scheduler: str | None = None, latents: bool = False) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] on the CPU from ``model.pipe(prompt, latents=seeds, ...)`` with the scheduler
    that seedspace builds for ``scheduler`` (None: the model's default), or with ``latents=True`` the final latents
    x_0 (N, *seed_shape). Flux's latents are packed on the way in and unpacked on the way out."""
    name = check_scheduler(scheduler, model.prediction_type, model.name)
    pipe = model.pipe
    original = pipe.scheduler
    pipe.scheduler = make_scheduler(name, model.scheduler_config, model.prediction_type)
    x_t = model.check_seeds(seeds).to(model.dtype)
    packed = hasattr(pipe, "_pack_latents")
    if packed:
        x_t = pipe._pack_latents(x_t, x_t.shape[0], *model.seed_shape)
    options = {} if type(pipe).__name__ == "FluxPipeline" else {"negative_prompt": model.negative_prompt or None}
    try:
        images = pipe([prompt] * seeds.shape[0], height=model.height, width=model.width, num_inference_steps=steps,
                      guidance_scale=guidance, latents=x_t, output_type="latent" if latents else "pt",
                      **options).images
    finally:
        pipe.scheduler = original
    if latents and packed:
        images = pipe._unpack_latents(images, model.height, model.width, pipe.vae_scale_factor)
    return images.float().cpu()

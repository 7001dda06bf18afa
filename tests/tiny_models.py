"""Tiny, randomly initialised models built offline from configs, for fast end-to-end tests."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import torch

# How far one image may move when the batch around it changes. The promise is identical bytes for the same batches
# (augment fixes its batch size; regenerate replays the recorded one); across batch sizes the CPU kernels pick
# other blockings, so float32 rounding differs. After a few sampler steps that is ~1e-5 in [0, 1] pixels (1.03e-5
# measured on an AVX2-only AMD EPYC, below 1e-6 on AVX-512 machines): 1e-4 is 10x that and still 1/40 of a grey
# level, so a real batch dependence (a sample seeing its neighbours) fails.
BATCH_ATOL = 1e-4


def _byte_alphabet() -> list[str]:
    """The GPT-2/CLIP byte -> printable-character table (bytes that print keep their character)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_clip_tokenizer(folder: Path, num_merges: int = 1000) -> None:
    """A CLIP BPE tokenizer with the first merges of the real CLIP merges file shipped by open_clip_torch."""
    spec = importlib.util.find_spec("open_clip")
    merges_gz = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(merges_gz).read().decode("utf-8").split("\n")[1:1 + num_merges]
    alphabet = _byte_alphabet()
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def tiny_pixel_unet(num_classes: int = 3, size: int = 8, seed: int = 0):
    """A tiny class-conditional UNet2DModel with a null class (index num_classes)."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=size, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                       num_class_embeds=num_classes + 1, norm_num_groups=4)


def tiny_pixel_flow_model(num_classes: int = 3, size: int = 8):
    """A tiny class-conditional pixel flow-matching model (random weights): the tiny UNet read as a velocity
    predictor on the flow-matching Euler schedule of `seedspace testbed train --objective flow`."""
    from diffusers import DDPMScheduler

    from seedspace.backends.pixel import PixelUNetModel
    from seedspace.testbed.train import SCHEDULER_CONFIG, make_scheduler

    class TinyPixelFlowModel(PixelUNetModel):
        prediction_type = "flow"  # model_prediction (the guided UNet output) is the velocity
        scheduler_config = dict(make_scheduler("flow").config)

    return TinyPixelFlowModel(tiny_pixel_unet(num_classes, size), DDPMScheduler(**SCHEDULER_CONFIG).alphas_cumprod,
                              name="tiny-flow", null_class=num_classes, default_steps=4, default_guidance=2.0)


def write_tiny_testbed(folder: Path, num_classes: int = 3, size: int = 8) -> Path:
    """A testbed-format folder (unet/, scheduler/, judge, encoder, few-shot set, testbed.json), random weights."""
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    from seedspace.testbed.judge import Encoder, Judge
    from seedspace.testbed.train import SCHEDULER_CONFIG

    tiny_pixel_unet(num_classes, size).save_pretrained(folder / "unet", safe_serialization=True)
    DDPMScheduler(**SCHEDULER_CONFIG).save_pretrained(folder / "scheduler")
    torch.manual_seed(0)
    save_file(Judge(num_classes).state_dict(), str(folder / "judge.safetensors"))
    save_file(Encoder(num_classes).state_dict(), str(folder / "encoder.safetensors"))
    gen = torch.Generator().manual_seed(0)
    save_file({"images": torch.randint(0, 256, (4 * num_classes, 28, 28), generator=gen, dtype=torch.uint8),
               "labels": torch.arange(num_classes).repeat_interleave(4)}, str(folder / "fewshot.safetensors"))
    write_tiny_splits(folder, num_classes)
    (folder / "testbed.json").write_text(json.dumps({
        "name": "tiny-testbed", "classes": [f"class{i}" for i in range(num_classes)], "default_steps": 4,
        "default_guidance": 2.0, "head_classes": [0], "tail_classes": [num_classes - 1]}))
    return folder


def write_tiny_splits(folder: Path, num_classes: int, train_counts=(40, 20, 12, 8, 6), test_per_class: int = 30) -> None:
    """The long-tailed training split and the test references of a testbed folder (gzip'd safetensors of uint8
    28x28 images and labels, as the embedded testbed ships them), random pixels."""
    import gzip

    from safetensors.torch import save

    gen = torch.Generator().manual_seed(1)
    counts = {"train-longtail": [train_counts[c % len(train_counts)] for c in range(num_classes)],
              "test-references": [test_per_class] * num_classes}
    for name, per_class in counts.items():
        labels = torch.arange(num_classes).repeat_interleave(torch.tensor(per_class))
        images = torch.randint(0, 256, (labels.shape[0], 28, 28), generator=gen, dtype=torch.uint8)
        data = save({"images": images, "labels": labels, "source_indices": torch.arange(labels.shape[0])})
        (folder / f"{name}.safetensors.gz").write_bytes(gzip.compress(data, mtime=0))


def write_tiny_stable_diffusion(folder: Path) -> Path:
    """A tiny StableDiffusionPipeline (UNet2DConditionModel, AutoencoderKL, CLIP text model) saved to folder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    write_clip_tokenizer(folder / "_tok")
    tokenizer = CLIPTokenizer(str(folder / "_tok" / "vocab.json"), str(folder / "_tok" / "merges.txt"), model_max_length=77)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                        bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "sd", safe_serialization=True)
    return folder / "sd"


def _tiny_clip(folder: Path, projection: bool, hidden: int = 16):
    """A tiny CLIP tokenizer (open_clip's merges) and text encoder; ``projection`` adds the pooled projection
    that SDXL's second encoder and SD3's encoders have."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    write_clip_tokenizer(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                            projection_dim=hidden, bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1)
    return tokenizer, (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _tiny_vae(latent_channels: int, **kwargs):
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=latent_channels,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         norm_num_groups=4, sample_size=16, **kwargs)


def write_tiny_sdxl(folder: Path) -> Path:
    """A tiny StableDiffusionXLPipeline (two CLIP encoders, text_time conditioning) saved to folder/sdxl."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=2, norm_num_groups=4, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 16)
    tokenizer, text = _tiny_clip(folder / "_tok1", projection=False)
    tokenizer_2, text_2 = _tiny_clip(folder / "_tok2", projection=True)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    pipe = StableDiffusionXLPipeline(vae=_tiny_vae(4), text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder / "sdxl", safe_serialization=True)
    return folder / "sdxl"


def write_tiny_sd3(folder: Path) -> Path:
    """A tiny StableDiffusion3Pipeline without the optional T5 encoder, saved to folder/sd3."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=8, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=2, caption_projection_dim=16,
                                        joint_attention_dim=32, pooled_projection_dim=32, out_channels=8)
    tokenizer, text = _tiny_clip(folder / "_tok1", projection=True)
    tokenizer_2, text_2 = _tiny_clip(folder / "_tok2", projection=True)
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    vae=_tiny_vae(8, shift_factor=0.06, scaling_factor=1.5),
                                    text_encoder=text, tokenizer=tokenizer, text_encoder_2=text_2,
                                    tokenizer_2=tokenizer_2, text_encoder_3=None, tokenizer_3=None)
    pipe.save_pretrained(folder / "sd3", safe_serialization=True)
    return folder / "sd3"


def write_tiny_flux(folder: Path) -> Path:
    """A tiny guidance-distilled FluxPipeline (CLIP + T5 encoders, packed latents), saved to folder/flux. The T5
    slot takes the CLIP BPE tokenizer: any tokenizer whose ids fit the encoder serves a random-weight test."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=16, guidance_embeds=True, axes_dims_rope=[4, 4, 8])
    tokenizer, text = _tiny_clip(folder / "_tok1", projection=False)
    tokenizer_2, _ = _tiny_clip(folder / "_tok2", projection=False)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                 num_heads=2, relative_attention_num_buckets=8))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)
    pipe = FluxPipeline(transformer=transformer, scheduler=scheduler,
                        vae=_tiny_vae(4, shift_factor=0.1, scaling_factor=0.4), text_encoder=text,
                        tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=tokenizer_2)
    pipe.save_pretrained(folder / "flux", safe_serialization=True)
    return folder / "flux"

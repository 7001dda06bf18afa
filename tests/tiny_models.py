"""Tiny, randomly initialised models built offline from configs, for fast end-to-end tests."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import torch


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
    (folder / "testbed.json").write_text(json.dumps({
        "name": "tiny-testbed", "classes": [f"class{i}" for i in range(num_classes)], "default_steps": 4,
        "default_guidance": 2.0, "head_classes": [0], "tail_classes": [num_classes - 1]}))
    return folder


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

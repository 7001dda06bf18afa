"""The embedded testbeds: class-conditional pixel UNets trained by the project on long-tailed Fashion-MNIST, shipped
inside the package with their judge classifier and a few-shot set of real images (see MODEL_CARD.md):
``testbed`` (DDPM noise prediction, the default) and ``testbed-flow`` (rectified-flow velocity prediction, the same
UNet, data and recipe otherwise; it shares the DDPM testbed's judge, encoder and data files)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..testbed.data import IMAGE_SIZE, SPLIT_FILES, read_split, to_model_space
from ..testbed.judge import Encoder, Judge
from .pixel import PixelUNetModel
from .prior_store import PRIOR_FILE

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "testbed" / "weights"
FLOW_WEIGHTS_DIR = WEIGHTS_DIR / "flow"
EMBEDDED_MODELS = {"testbed": WEIGHTS_DIR, "testbed-flow": FLOW_WEIGHTS_DIR}




class TestbedModel(PixelUNetModel):
    """Pixel UNet on 32x32 grey images (28x28 Fashion-MNIST padded), null class = the last class embedding.

    ``testbed.json`` may name a ``shared_folder`` (relative to the folder) where the judge, encoder, few-shot and
    split files are found when the folder itself has none (the flow testbed shares the DDPM testbed's)."""

    __test__ = False  # not a pytest class

    def __init__(self, unet, alphas_cumprod, folder: Path, **kwargs):
        info = json.loads((folder / "testbed.json").read_text())
        super().__init__(unet, alphas_cumprod, name=info.get("name", "seedspace-testbed"),
                         null_class=info.get("null_class", unet.config.num_class_embeds - 1), class_names=info["classes"],
                         default_steps=info.get("default_steps", 50), default_guidance=info.get("default_guidance", 2.0),
                         **kwargs)
        self.folder = folder
        self.prior_path = folder / PRIOR_FILE
        self.info = info
        self.shared_folder = (folder / info["shared_folder"]).resolve() if info.get("shared_folder") else None
        self.tail_classes = info.get("tail_classes", [])
        self.medium_classes = info.get("medium_classes", [])
        self.head_classes = info.get("head_classes", [])
        self.has_judge = self.data_file("judge.safetensors").is_file()  # a folder trained with --skip-judge has none
        self.has_features = self.has_judge or self.data_file("encoder.safetensors").is_file()

    def data_file(self, name: str) -> Path:
        """Where the folder's file ``name`` is (judge, encoder, few-shot or split file): ``folder / name``, or the
        shared folder's file of that name where the folder has none."""
        own = self.folder / name
        if own.exists() or self.shared_folder is None:
            return own
        return self.shared_folder / name

    @classmethod
    def from_folder(cls, folder: str | Path, device="cpu", dtype=torch.float32, **kwargs) -> "TestbedModel":
        """Load a testbed-format folder (unet/, scheduler/, judge, encoder, few-shot set, testbed.json); a
        flow-matching scheduler in scheduler/ makes it a velocity-prediction (flow) model."""
        # diffusers takes seconds to import: only when a model is loaded
        from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler, UNet2DModel
        from diffusers.utils import logging as diffusers_logging

        folder = Path(folder)
        diffusers_logging.set_verbosity_error()  # no advice about `accelerate` for a 4 MB model
        unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True, low_cpu_mem_usage=False)
        unet = unet.to(device=device, dtype=dtype)
        config = DDPMScheduler.load_config(folder / "scheduler")
        if config.get("_class_name") == FlowMatchEulerDiscreteScheduler.__name__:
            flow = FlowMatchEulerDiscreteScheduler.from_config(config)
            return cls(unet, None, folder, flow_config=dict(flow.config), **kwargs)
        return cls(unet, DDPMScheduler.from_config(config).alphas_cumprod, folder, **kwargs)

    @classmethod
    def from_package(cls, name: str = "testbed", device="cpu", dtype=torch.float32, **kwargs) -> "TestbedModel":
        """A testbed shipped inside the package: ``testbed`` or ``testbed-flow``."""
        return cls.from_folder(EMBEDDED_MODELS[name], device=device, dtype=dtype, **kwargs)

    def prepare_image(self, image, fit: str | None = None, notes: list | None = None) -> np.ndarray:
        """28x28 images are padded with background to 32x32 (as in training); other sizes are fitted as
        :meth:`PixelUNetModel.prepare_image` says."""
        if image.size == (28, 28) and self.seed_shape[1:] == (32, 32):
            if notes is not None:
                notes.append("padded 28x28 to 32x32 with background, as in training"
                             + ("; colour to grey (the model is grey)" if image.mode not in ("L", "1") else ""))
            return ((to_model_space(np.asarray(image.convert("L"))[None]) + 1) / 2)[0].numpy()
        return super().prepare_image(image, fit, notes)

    def _load_network(self, cls, filename: str):
        """A testbed CNN (judge or encoder) from its safetensors file: eval mode, CPU, float32, no gradients."""
        net = cls(len(self.class_names))
        net.load_state_dict(load_file(str(self.data_file(filename))))
        return net.eval().requires_grad_(False)

    def _missing(self, part: str) -> ValueError:
        return ValueError(f"{self.name} has no {part}: {self.folder} was trained with --skip-{part} (no "
                          f"{part}.safetensors); train it again without that option to use this")

    @cached_property
    def judge(self):
        """The judge classifier (the evaluator); ValueError for a folder trained without one."""
        if not self.has_judge:
            raise self._missing("judge")
        return self._load_network(Judge, "judge.safetensors")

    @cached_property
    def encoder(self):
        """The encoder (the testbed's stand-in for CLIP), or None in folders that have no ``encoder.safetensors``."""
        if not self.data_file("encoder.safetensors").is_file():
            return None
        return self._load_network(Encoder, "encoder.safetensors")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Semantic features (the CLIP stand-in, used by SeedSelect) of images in [0, 1], differentiable: the
        encoder's 128-d features, or the judge's where the folder ships no encoder."""
        if not self.has_features:
            raise self._missing("encoder")
        net = self.encoder if self.encoder is not None else self.judge
        return net.features(self._network_input(images))

    def judge_features(self, images: torch.Tensor) -> torch.Tensor:
        """The judge's 128-d penultimate features of images in [0, 1]: the space of the FID-style scores."""
        return self.judge.features(self._network_input(images))

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, num_classes) of images in [0, 1]."""
        with torch.no_grad():
            return torch.cat([self.judge(self._network_input(images[i:i + 512])).softmax(-1)
                              for i in range(0, images.shape[0], 512)])

    @staticmethod
    def _network_input(images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the judge's and encoder's input: 32x32 (other sizes, as from small test models, are
        resized bilinearly), in [-1, 1], float32 on the CPU."""
        if tuple(images.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
            images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        return images.cpu().float() * 2 - 1

    def fewshot(self, class_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The shipped real test images (N, 1, 32, 32) in [0, 1] and labels, optionally of one class."""
        path = self.data_file("fewshot.safetensors")
        if not path.is_file():
            raise ValueError(f"{self.name} has no few-shot images ({path})")
        data = load_file(str(path))
        images, labels = (to_model_space(data["images"].numpy()) + 1) / 2, data["labels"].long()
        if class_index is not None:
            keep = labels == class_index
            images, labels = images[keep], labels[keep]
        return images, labels

    def data_split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Real images of the folder's split ``name``: ``"train-longtail"`` (what the UNet was trained on) or
        ``"test-references"`` (held out of all training): uint8 images (N, H, W), H = W = 28 (padded to 32 by
        :func:`~seedspace.testbed.data.to_model_space`) or 32, and int64 labels; ValueError when it has none."""
        folder = self.data_file(SPLIT_FILES[name]).parent if name in SPLIT_FILES else self.folder
        data = read_split(folder, name)
        return data["images"], data["labels"]

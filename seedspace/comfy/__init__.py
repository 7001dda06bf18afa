"""seedspace as a ComfyUI node pack: NAO / SLERP / COG / LERP interpolation, centroids, weighted blends, noise from
seeds as KSampler draws it, NOISE for SamplerCustomAdvanced (a seed, a blend, a frame of a NAO path between two
seeds), and a norm report, on ComfyUI's LATENT dicts.

Install seedspace into ComfyUI's Python environment from a checkout of its repository (there is no PyPI release),
then put the folder ``examples/comfyui/custom_nodes/seedspace/`` into ComfyUI's ``custom_nodes/``: its
``__init__.py`` is the one line ``from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS`` and
its ``pyproject.toml`` the pack's metadata in the ComfyUI registry's format. Needs only the geometry (torch, numpy,
scipy).
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

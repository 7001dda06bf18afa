"""seedspace as a ComfyUI node pack: NAO / SLERP / COG / LERP interpolation, centroids, weighted blends, noise from
seeds as KSampler draws it, and a norm report, on ComfyUI's LATENT dicts.

Install seedspace into ComfyUI's Python environment, then put a folder ``custom_nodes/seedspace`` whose
``__init__.py`` is the one line ``from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS``
(``examples/comfyui/custom_nodes/seedspace/``). Needs only the geometry and the seed parser (torch, numpy, scipy).
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

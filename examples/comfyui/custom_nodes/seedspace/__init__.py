"""ComfyUI custom-node entry: the seedspace node pack (pip install seedspace into ComfyUI's environment first)."""
from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: F401

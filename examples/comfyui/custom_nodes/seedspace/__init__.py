"""ComfyUI custom-node entry: the seedspace node pack (install seedspace from its repository checkout into ComfyUI's
Python first: `python -m pip install /path/to/seedspace`; there is no PyPI release)."""
from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: F401

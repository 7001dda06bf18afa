"""Progress bars: shown or hidden by one scoped switch, not by a flag passed down every call.

    with seedspace.progress_bars():          # bars for what runs inside the block
        seedspace.augment(model, "refs/", "out/")

Hidden by default, so the library is quiet unless asked; the command line shows them unless ``--quiet``. Like
``huggingface_hub``'s ``disable_progress_bars``, a presentation choice lives in one place, but scoped (a context
variable) rather than global, so a quiet block inside a loud one (a command's own bar over the model's step bars)
stays local to that block. A thread starts with bars hidden.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

_SHOWN = contextvars.ContextVar("seedspace_progress_bars", default=False)


@contextlib.contextmanager
def progress_bars(shown: bool = True):
    """Show (``shown``) or hide the progress bars of everything run inside the block; restored after it."""
    token = _SHOWN.set(bool(shown))
    try:
        yield
    finally:
        _SHOWN.reset(token)


def progress_bar(iterable=None, **options):
    """A tqdm bar on stderr (``options`` as tqdm takes them), disabled unless the enclosing scope shows bars."""
    from tqdm.auto import tqdm  # the models extra: a core install (the geometry alone) has no tqdm

    return tqdm(iterable, disable=not _SHOWN.get(), file=sys.stderr, **options)


@contextlib.contextmanager
def command_bar(iterable=None, **options):
    """A caller's own :func:`progress_bar`, with the bars of everything run inside the block hidden: one bar by
    image or class over model calls, not the model's denoising steps beneath it."""
    with progress_bar(iterable, **options) as bar, progress_bars(False):
        yield bar

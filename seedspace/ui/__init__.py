"""``seedspace ui``: a browser explorer of a model's seed space (Interpolate, Centroid, Travel, Norms), writing
the same run folders as the command line.

- :mod:`seedspace.ui.tasks`: the four tasks as plain functions (:class:`Explorer`), what the page's buttons call;
- :mod:`seedspace.ui.inputs`: typed seeds and uploads -> seed items;
- :mod:`seedspace.ui.plots`: the norm-along-path plot;
- :mod:`seedspace.ui.app`: the Gradio page (needs the optional ``ui`` extra: ``pip install 'seedspace[ui]'``).
"""

from .tasks import Explorer, TaskResult

__all__ = ["Explorer", "TaskResult"]

"""The methods people call on a model: ``augment`` (synthetic training data for rare classes), ``seedselect``
(seeds optimised toward a few reference images) and ``calibrate`` (a norm prior fitted to what the model renders
well). Each takes one settings object and writes its outputs through :mod:`seedspace.runs`."""

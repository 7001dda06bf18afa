"""Conditions: what a class-conditional or text-to-image model is asked for, and the JSON record of it.

A class-conditional model takes a class index or name (``"unconditional"`` names its null class); a text model
takes a prompt (or, as the NAO code does, the class name used as the prompt). Records look like
``{"class": 9, "class_name": "Ankle boot"}`` or ``{"prompt": "...", "negative_prompt": ""}``.
"""

from __future__ import annotations

from .backends.base import UNCONDITIONAL


def is_class_conditional(model) -> bool:
    """True for models that take class labels or nothing (pixel UNets, the testbed), False for text-to-image
    models."""
    return model.conditioning != "prompt"


def resolve_condition(model, class_value=None, prompt=None, allow_list: bool = False) -> tuple[object, dict]:
    """(condition, record) for ``model`` from a class (index, name or ``"unconditional"``) or a prompt.

    Class-conditional models default to class 0 when no class is given; with ``allow_list`` a comma list of
    classes gives one condition per entry (e.g. one per travel keyframe). ValueError for a class that the model
    does not know, a prompt given to a class model, or a class given to an unconditional model.
    """
    if not is_class_conditional(model):
        text = prompt if prompt is not None else (class_value or "")
        record = {"prompt": text, "negative_prompt": getattr(model, "negative_prompt", "")}
        return ([text] if allow_list else text), record
    if prompt is not None:
        raise ValueError(f"{model.name} is class-conditional: give a class, not a prompt")
    if model.conditioning == "none":
        if class_value not in (None, ""):
            raise ValueError(f"{model.name} is unconditional: it takes no class")
        return None, {"class": None}
    if class_value is None:
        class_value = "0"
    values = [v.strip() for v in str(class_value).split(",")] if allow_list else [str(class_value)]
    null = getattr(model, "null_class", None)
    indices = [UNCONDITIONAL if i == null else i for i in map(model.class_index, values)]
    names = [model.class_names[i] if model.class_names and i != UNCONDITIONAL else str(i) for i in indices]
    if allow_list:
        return indices, {"class": indices, "class_name": names}
    return indices[0], {"class": indices[0], "class_name": names[0]}


def condition_from_record(record: dict):
    """The model condition stored in a record written by :func:`resolve_condition`."""
    if "prompt" in record:
        return record["prompt"]
    return record.get("class")


def condition_label(record: dict) -> str:
    """A one-line description of a condition record (the first line of a PNG's ``parameters`` text)."""
    if "prompt" in record:
        return record["prompt"]
    names = record.get("class_name")
    if isinstance(names, list):
        return "classes: " + ", ".join(names)
    return f"class: {names}" if names is not None else ""

"""One home for what a run's settings are: frozen dataclasses whose constraints sit beside their fields, checked by
the one validator (:func:`seedspace.checks.validate`) when made, and recorded as run.json's ``parameters``.

    @dataclass(frozen=True)
    class TravelSettings(Settings):
        fps: float = setting(12.0, Number(*FPS_RANGE))

    TravelSettings(fps=0)                       # ValueError: fps must be a finite number in [0.1, 240], got 0.0
    TravelSettings.from_record(s.to_record()) == s

The record is plain JSON data (tuples become lists, and come back as tuples through the rules); ``from_record``
refuses keys the class does not have, so a record and the settings it came from always agree. Library entry
points, the command line and the explorer build the same class, so they write the same record.

Also here: what every generating command fills from the model (:func:`model_sampling`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from pathlib import Path

from .checks import (DTYPE_CHOICES, GUIDANCE_RANGE, MAX_BATCH_SIZE, MAX_STEPS, MAX_THREADS, SEED_INT_LIMIT, Integer,
                     Items, Number, OneOf, Rule, rule_of, validate)


def _prior_spec(value, name):
    """A ``prior=`` spec in its one form: None (chi(d)), a name or file path (text), a record (dict); a prior
    object becomes its record. Resolved against a model by :func:`seedspace.backends.run_prior.prior_record`."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, dict)):
        return value
    to_record = getattr(value, "to_record", None)  # a NormPrior (the geometry is not imported for plain settings)
    if callable(to_record):
        return to_record()
    raise ValueError(f"{name} must be 'chi', 'model', 'scaled-chi:S', a prior file, a record or a prior, got {value!r}")


def _class_list(value, name):
    """Class indices or names (resolved against the model when it runs): one, or a non-empty list, none twice."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = (value,)
    return Items(Rule(_class_item), repeats=False)(value, name)


def _class_item(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be class indices or names, got {value!r}")
    return value


# the rules that every settings class shares (one place: a bound changes once)
SEED = Integer(0, SEED_INT_LIMIT - 1)
STEPS_OR_DEFAULT = Integer(1, MAX_STEPS, optional=True)  # None: the model's default_steps
GUIDANCE_OR_DEFAULT = Number(*GUIDANCE_RANGE, optional=True)  # None: the model's default_guidance
BATCH_SIZE = Integer(1, MAX_BATCH_SIZE)
THREADS_OR_CURRENT = Integer(1, MAX_THREADS, optional=True)  # None: this process's count when the run starts
DTYPE = OneOf(DTYPE_CHOICES)
PRIOR_SPEC = Rule(_prior_spec, (3, ["chi"]), optional=True)
CLASSES = Rule(_class_list, ((), 1.5, (True,), (1, 1)), optional=True)  # None: all the model's classes


class Settings:
    """Base of every settings class (subclasses are ``@dataclass(frozen=True)``).

    ``__post_init__`` applies each field's declared rule (messages name ``field_prefix`` + the field) and then
    :meth:`check_together`, the rules that involve several fields.
    """

    field_prefix: ClassVar[str] = ""

    def __post_init__(self):
        validate(self, self.field_prefix)
        self.check_together()

    def check_together(self) -> None:
        """Rules between fields (ValueError naming them); none by default."""

    def to_record(self) -> dict:
        """The settings as JSON data: what run.json keeps as its ``parameters``."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, record: dict):
        """The settings a record describes (``to_record``'s inverse); ValueError naming a key the class lacks."""
        if not isinstance(record, dict):
            raise ValueError(f"{cls.__name__} record must be an object, got {type(record).__name__}")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(record) - names)
        if unknown:
            raise ValueError(f"{cls.field_prefix}{unknown[0]} is not a setting of {cls.__name__}")
        return cls(**record)

    @classmethod
    def checked(cls, **values) -> dict:
        """Some fields' ``values`` in their one form, each checked by its declared rule: bad input fails before
        the rest of the settings are known (before a model loads, say); the settings are made once they are."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{cls.field_prefix}{unknown[0]} is not a setting of {cls.__name__}")
        return {name: _checked(fields[name], value, cls.field_prefix) for name, value in values.items()}

    def replace(self, **changes):
        """A copy with ``changes``, validated like a new one."""
        return dataclasses.replace(self, **changes)


def nested(cls, refused: tuple = (3,)) -> Rule:
    """The rule of a field that holds other settings (``cls``): the object, or its record (run.json's) as the
    object; ``refused``: values it refuses, for the contract test."""
    def checked(value, name):
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_record(value)
        raise ValueError(f"{name} must be {cls.__name__} settings or their record, got {value!r}")
    return Rule(checked, refused)


def check_unchanged(recorded: dict, given: dict, out, keys=None, newer: tuple = ()) -> None:
    """The one resume check: ValueError ``cannot resume OUT: KEY was OLD, now NEW`` for the first of ``keys``
    (default: every key of ``given``) whose recorded value differs from the given one. A key of ``newer`` (a
    setting added after the run was made) that the record lacks is not compared; a missing key is None."""
    for key in given if keys is None else keys:
        if key in newer and key not in recorded:
            continue
        if recorded.get(key) != given.get(key):
            raise ValueError(f"cannot resume {out}: {key} was {_shown(recorded.get(key))}, now {_shown(given.get(key))}")


def _shown(value) -> str:
    return "unset" if value is None else repr(value)


def model_sampling(model, steps: int | None, guidance: float | None) -> tuple[int, float]:
    """``(steps, guidance)`` with None replaced by the model's defaults: the one place that fills them."""
    return (int(model.default_steps if steps is None or steps == 0 else steps),
            float(model.default_guidance if guidance is None else guidance))


def _checked(field, value, prefix: str):
    rule = rule_of(field)
    return value if rule is None else rule(value, prefix + field.name)


def _plain(value):
    if isinstance(value, Settings):
        return value.to_record()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

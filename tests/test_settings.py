"""The settings contract, run over every Settings class: defaults valid, every field under a declared rule, the
record a JSON round trip, each rule refusing what it should with one line naming the field."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest

from seedspace.checks import Integer, Items, Number, OneOf
from seedspace.settings import Settings, check_unchanged, model_sampling

# every module that defines a Settings class (imported so that Settings.__subclasses__ sees them all)
SETTINGS_MODULES = ("seedspace.methods.augment.settings", "seedspace.methods.seedselect.settings",
                    "seedspace.methods.calibrate", "seedspace.evaluation.longtail_settings", "seedspace.evaluation.config",
                    "seedspace.testbed.recipe", "seedspace.runs.run_settings")
# values for required fields whose rule is a Rule or Items (no generic example exists for those)
FIELD_EXAMPLES = {"model": {"id": "testbed", "seed_shape": [1, 32, 32]}, "condition": {"class": 0},
                  "seeds": [{"int": 11}, {"int": 42}], "images": [{"image": "a.png"}, {"image": "b.png"}]}


def all_settings() -> list[type]:
    for name in SETTINGS_MODULES:
        importlib.import_module(name)
    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


def example(name, rule):
    """A value the rule accepts, for fields without a default."""
    if name in FIELD_EXAMPLES:
        return FIELD_EXAMPLES[name]
    if isinstance(rule, Integer):
        return rule.low if rule.low is not None else 1
    if isinstance(rule, Number):
        return rule.high if rule.high is not None else (rule.low or 0.0) + 1.0
    if isinstance(rule, OneOf):
        return rule.options[0]
    raise AssertionError(f"no example for {rule!r}")


def made(cls):
    required = {f.name: example(f.name, f.metadata["rule"]) for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return cls(**required), required


SETTINGS = all_settings()


def test_every_settings_module_is_found():
    names = {cls.__name__ for cls in SETTINGS}
    assert {"AugmentSettings", "SeedSelectSettings", "CalibrationSettings", "LongtailSettings", "FewshotSettings",
            "TestbedRecipe", "EvalConfig", "InterpolateSettings", "CentroidSettings", "TravelSettings",
            "SeedSelectRunSettings", "NormsSettings", "InvertSettings", "ClusterSettings"} <= names


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_defaults_are_valid_and_every_field_has_a_rule(cls):
    settings, _ = made(cls)
    assert dataclasses.is_dataclass(settings) and cls.__dataclass_params__.frozen
    unruled = [f.name for f in dataclasses.fields(cls) if f.metadata.get("rule") is None]
    assert unruled == [], f"{cls.__name__} fields without a declared rule: {unruled}"


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_the_record_is_json_and_rebuilds_the_same_settings(cls):
    settings, _ = made(cls)
    record = json.loads(json.dumps(settings.to_record()))
    assert record == settings.to_record()
    assert cls.from_record(record) == settings
    with pytest.raises(ValueError, match=f"{cls.field_prefix}no_such_setting is not a setting of {cls.__name__}"):
        cls.from_record({**record, "no_such_setting": 1})


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_each_rule_refuses_bad_values_with_one_line_naming_the_field(cls):
    _, required = made(cls)
    tried, accepted = 0, []
    for field in dataclasses.fields(cls):
        for bad in field.metadata["rule"].examples_refused:
            try:
                cls(**{**required, field.name: bad})
            except ValueError as exc:
                message = str(exc)
                assert "\n" not in message and f"{cls.field_prefix}{field.name}" in message, (field.name, bad, message)
            else:
                accepted.append((field.name, bad))
            tried += 1
    assert accepted == []
    assert tried >= len(dataclasses.fields(cls))


def test_items_keep_one_form_and_refuse_repeats_by_key():
    rule = Items(OneOf(("a", "b", "c")), repeats=False, key=str.lower)
    assert rule(["a", "b"], "letters") == ("a", "b")
    with pytest.raises(ValueError, match="letters names 'a' twice"):
        rule(("a", "b", "a"), "letters")
    with pytest.raises(ValueError, match="letters: none given"):
        rule((), "letters")
    with pytest.raises(ValueError, match="unknown letters 'z'; choose one of a, b, c"):
        rule(("z",), "letters")


def test_a_resume_names_the_first_setting_that_changed():
    check_unchanged({"a": 1, "b": 2}, {"a": 1, "b": 2}, "out")
    with pytest.raises(ValueError, match="cannot resume out: b was 2, now 3"):
        check_unchanged({"a": 1, "b": 2}, {"a": 1, "b": 3}, "out")
    with pytest.raises(ValueError, match="cannot resume out: c was unset, now 4"):
        check_unchanged({"a": 1}, {"a": 1, "c": 4}, "out")
    check_unchanged({"a": 1}, {"a": 1, "c": 4}, "out", newer=("c",))  # added after the run was made


def test_model_defaults_fill_only_what_is_unset():
    class Model:
        default_steps, default_guidance = 50, 2.0

    assert model_sampling(Model(), None, None) == (50, 2.0)
    assert model_sampling(Model(), 10, 0.0) == (10, 0.0)
    assert isinstance(model_sampling(Model(), None, 3)[1], float)

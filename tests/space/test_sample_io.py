"""Samples on disk: JSON that reads back exactly."""

from __future__ import annotations

import json
import math

import pytest

from archsmith.space import SpaceError, dumps_arch, load_arch, loads_arch, save_arch


def same(a, b):
    """Equal with equal types all the way down (1 != 1.0 != True, tuple != list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


SAMPLE = {
    "width": 32,
    "dropout": 0.25,
    "flag": True,
    "none": None,
    "act": "gelu",
    "kernel": (3, 3),
    "nested": [(1, (2, 3)), [4, 5]],
    "skips": ["a", "c"],
    "empty_tuple": (),
    "cfg": {"k": (1, 2), "v": [1.0, -0.0]},
    "unicode": "ünï/çødé",
    "big": 10**30,
    "tiny": 1e-300,
    "float_one": 1.0,
}


def test_save_load_round_trip_exact(tmp_path):
    path = tmp_path / "arch.json"
    save_arch(SAMPLE, path)
    back = load_arch(path)
    assert same(back, SAMPLE)
    assert type(back["kernel"]) is tuple
    assert type(back["nested"][0]) is tuple and type(back["nested"][1]) is list
    assert type(back["float_one"]) is float
    assert math.copysign(1.0, back["cfg"]["v"][1]) == -1.0
    assert load_arch(str(path)) == back  # str paths work too


def test_file_is_plain_json(tmp_path):
    path = tmp_path / "arch.json"
    save_arch({"width": 32, "kernel": (3, 3), "ops": ["a"]}, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"width": 32, "kernel": {"__tuple__": [3, 3]}, "ops": ["a"]}


def test_dumps_loads_round_trip():
    assert same(loads_arch(dumps_arch(SAMPLE)), SAMPLE)
    assert same(loads_arch(dumps_arch(SAMPLE, indent=None)), SAMPLE)
    assert "\n" not in dumps_arch(SAMPLE, indent=None)


def test_hand_written_file(tmp_path):
    path = tmp_path / "hand.json"
    path.write_text('{"a": 1, "b": [1, 2]}', encoding="utf-8")
    assert same(load_arch(path), {"a": 1, "b": [1, 2]})


def test_dict_that_looks_like_a_tuple_round_trips_or_is_refused():
    sample = {"cfg": {"__tuple__": [1, 2]}}
    try:
        text = dumps_arch(sample)
    except SpaceError as e:  # refusing it clearly is acceptable
        assert "'cfg'" in str(e)
        return
    assert same(loads_arch(text), sample)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param({1, 2}, id="set"),
        pytest.param(b"raw", id="bytes"),
        pytest.param(1 + 2j, id="complex"),
        pytest.param([1, object()], id="nested-object"),
        pytest.param({1: "a"}, id="int-key"),
    ],
)
def test_non_json_value_is_a_clear_error(value):
    with pytest.raises(SpaceError, match=r"label 'bad_value'") as e:
        dumps_arch({"ok": 1, "bad_value": value})
    assert "JSON" in str(e.value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="inf"),
        pytest.param(-float("inf"), id="-inf"),
        pytest.param([1.0, float("nan")], id="nested-nan"),
    ],
)
def test_non_finite_float_is_not_json(value):
    # NaN and Infinity are not JSON: other tools cannot read a file holding them.
    with pytest.raises(SpaceError, match=r"'bad_value'"):
        dumps_arch({"bad_value": value})


def test_non_string_label():
    with pytest.raises(SpaceError, match="labels must be strings"):
        dumps_arch({1: "x"})


def test_sample_must_be_a_mapping():
    with pytest.raises(SpaceError, match="a sample is a dict"):
        dumps_arch([("a", 1)])


def test_save_error_leaves_no_partial_file(tmp_path):
    path = tmp_path / "x.json"
    with pytest.raises(SpaceError):
        save_arch({"a": object()}, path)
    assert not path.exists()


def test_load_missing_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(SpaceError, match=r"'.*nope\.json' does not exist"):
        load_arch(missing)


def test_load_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SpaceError, match=r"bad\.json' is not valid JSON"):
        load_arch(path)


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"a"', "null"])
def test_load_non_object(text, tmp_path):
    with pytest.raises(SpaceError, match="holds a JSON object"):
        loads_arch(text)
    path = tmp_path / "arr.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpaceError, match="holds a JSON object"):
        load_arch(path)

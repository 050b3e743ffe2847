"""Samples on disk: JSON that reads back exactly."""

from __future__ import annotations

import json
import math
import os
import re

import pytest

from archsmith.space import SpaceError, dumps_arch, load_arch, loads_arch, read_json_file, save_arch


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


EXPECTED = "expected a JSON file written by archsmith.save_arch or `archsmith export`"


def _bad_file(tmp_path, kind):
    """A path that is not a readable architecture file, of the given kind."""
    path = tmp_path / f"{kind}.json"
    contents = {
        "not utf-8 (garbage bytes)": b"\xff\xfe\x00garbage",
        "not utf-8 (latin-1 text)": '{"act": "caf\xe9"}'.encode("latin-1"),
        "empty": b"",
        "blank": b" \n\t\n",
        "invalid json": b"{not json",
        "truncated json": b'{"a": [1, 2',
        "a json array": b"[1, 2]",
        "a json number": b"3",
        "a json string": b'"a"',
        "json null": b"null",
    }
    if kind == "missing":
        return path
    if kind == "a directory":
        path.mkdir()
        return path
    path.write_bytes(contents[kind])
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("missing", "does not exist"),
        ("a directory", "is a directory, not a file"),
        ("not utf-8 (garbage bytes)", r"is not UTF-8 text \(byte 0xff at offset 0\)"),
        ("not utf-8 (latin-1 text)", r"is not UTF-8 text \(byte 0xe9 at offset 12\)"),
        ("empty", "is empty"),
        ("blank", "is empty"),
        ("invalid json", r"is not valid JSON \(Expecting property name .*line 1 column 2"),
        ("truncated json", "is not valid JSON"),
        ("a json array", r"holds a JSON array, not an object of label -> value \(a list of samples: .*load_samples\)"),
        ("a json number", "holds a JSON number, not an object"),
        ("a json string", "holds a JSON string, not an object"),
        ("json null", "holds a JSON null, not an object"),
    ],
)
def test_a_bad_architecture_file_is_named_with_the_problem_and_what_is_expected(tmp_path, kind, problem):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(SpaceError) as e:
        load_arch(path)
    message = str(e.value)
    assert message.startswith(f"architecture file {str(path)!r} ")  # names the file first
    assert re.search(problem, message), message
    assert message.endswith(f"{EXPECTED} (one sample object)")


def test_read_json_file_names_what_it_reads_and_the_expectation(tmp_path):
    path = _bad_file(tmp_path, "not utf-8 (garbage bytes)")
    with pytest.raises(SpaceError, match=r"^samples file '.*' is not UTF-8 text .*; expected a list$"):
        read_json_file(path, "samples file", "expected a list")
    with pytest.raises(
        SpaceError, match=r"expected a JSON file written by archsmith \(save_arch, `archsmith export`\)$"
    ):
        read_json_file(path, "samples file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path):
    path = tmp_path / "locked.json"
    path.write_text("{}", encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(SpaceError, match=r"cannot read architecture file '.*locked\.json': Permission denied"):
            load_arch(path)
    finally:
        path.chmod(0o600)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + dumps_arch({"a": (1, 2)}).encode())
    assert load_arch(path) == {"a": (1, 2)}


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"a"', "null"])
def test_load_non_object(text, tmp_path):
    with pytest.raises(SpaceError, match="holds a JSON object"):
        loads_arch(text)
    path = tmp_path / "arr.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpaceError, match=r"arr\.json' holds a JSON \w+, not an object"):
        load_arch(path)

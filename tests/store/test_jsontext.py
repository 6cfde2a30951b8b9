"""JSON text by orjson (``silonet.jsontext``): the values read back are the standard library's, what
orjson refuses is the standard library's to write or refuse, and every engine writes JSON columns
with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from silonet import jsontext
from silonet.store.db import Database
from silonet.store.repo import Repository

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | FLOATS
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                            max_size=4), max_leaves=30)
ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))
ASCII_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | ASCII,
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ASCII, inner, max_size=4),
                            max_leaves=30)


@given(VALUES)
def test_what_is_written_reads_back_as_the_standard_librarys(value: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value))


@given(ASCII_VALUES)
def test_compact_sorted_text_is_the_standard_librarys(value: Any) -> None:
    """What the OVS library sends (string keys, printable ASCII): the very text it wrote before."""
    assert jsontext.dumps_compact(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)
    assert jsontext.dumps_compact(value, sort_keys=False) == json.dumps(value, separators=(",", ":"))
    assert jsontext.dumps_compact(value, indent=2) == json.dumps(value, separators=(",", ":"), indent=2,
                                                                 sort_keys=True)


@given(VALUES)
def test_what_is_read_is_the_standard_librarys(value: Any) -> None:
    for written in (json.dumps(value), jsontext.dumps(value)):
        assert jsontext.loads(written) == json.loads(written)


def test_what_orjson_cannot_read_is_the_standard_librarys_to_read_or_refuse() -> None:
    assert jsontext.loads('{"a": NaN}')["a"] != jsontext.loads('{"a": NaN}')["a"]  # NaN, as json.loads reads it
    try:
        jsontext.loads("{")
    except ValueError:
        return
    raise AssertionError("read")


def test_what_orjson_refuses_is_the_standard_librarys_to_write_or_refuse() -> None:
    big = {"n": 2**70, "keys": {1: "a", None: "b"}, "lone": "\ud800"}
    assert jsontext.dumps(big) == json.dumps(big)
    mixed = {"b": 1, 2: "c"}  # keys json.dumps cannot sort: it refuses, and so does the compact text
    for fails in (lambda: jsontext.dumps({"at": datetime.now(UTC)}), lambda: jsontext.dumps({1, 2}),
                  lambda: jsontext.dumps_compact(mixed)):
        try:
            fails()
        except TypeError:
            continue
        raise AssertionError("written")


def test_every_engine_writes_json_columns_with_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.upgrade()
    try:
        engines = [db.engine, db.status_session().get_bind(), db.lease_session(1.0).get_bind()]
        assert all(e.dialect._json_serializer is jsontext.dumps for e in engines)
        assert all(e.dialect._json_deserializer is jsontext.loads for e in engines)
        with db.sessions() as s:  # and the text is compact: what orjson wrote
            Repository(s).audit("tester", "create", "silo s1", None, {"name": "s1", "vlans": [1, 2]})
            s.commit()
            stored = s.execute(text('SELECT "after" FROM audit')).scalar_one()
        assert stored == '{"name":"s1","vlans":[1,2]}'
    finally:
        db.dispose()

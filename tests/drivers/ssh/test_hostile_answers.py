"""Answers a real switch would never print must fail a read with the gateway's error, never as an
internal error nor by exhausting the manager: every JSON value of every captured answer is swapped
for values of other types, and a range a device writes is bounded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from silonet.drivers.report import load_case
from silonet.drivers.ssh.dialect import Target, dialects
from silonet.drivers.ssh.dialects.cumulus.read import expand
from silonet.drivers.ssh.dialects.eos.read import vlan_set
from silonet.drivers.ssh.driver import PARSE_ERRORS, replay
from silonet.drivers.untrusted import bounded_range

CORPUS = Path(__file__).parent / "corpus"
ODD = (7, [], "x", None, {"k": 1})


def _swaps(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, odd value) to put in place of one value of ``doc``."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        for odd in ODD:
            if type(odd) is not type(value):
                yield (*path, key), odd
        yield from _swaps(value, (*path, key))


def _put(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _put(doc[path[0]], path[1:], value)
    return copy


JSON_CASES = [(case, cmd) for folder in sorted(CORPUS.glob("*/*/case.yaml"))
              for case in [load_case(folder.parent)] for cmd, text in case.outputs.items()
              if cmd in dialects()[case.dialect].show and cmd not in case.filled and text.lstrip()[:1] in "{["
              and json.loads(text)]


@pytest.mark.parametrize(("case", "cmd"), JSON_CASES, ids=[f"{c.folder.name}:{cmd[:30]}" for c, cmd in JSON_CASES])
def test_a_json_answer_of_odd_shape_fails_as_the_gateways_error(case: Any, cmd: str) -> None:
    doc = json.loads(case.outputs[cmd])
    target = Target("gw", "", tuple(case.target.get("ports", ())))
    tried = 0
    for path, odd in list(_swaps(doc))[:400]:
        outputs = {**case.outputs, cmd: json.dumps(_put(doc, path, odd))}
        with contextlib.suppress(PARSE_ERRORS):
            replay(dialects()[case.dialect], target, outputs)
        tried += 1
    assert tried > 0


def test_a_range_a_device_writes_is_bounded() -> None:
    assert list(bounded_range("1", "3", "VLAN")) == [1, 2, 3]
    for lo, hi in (("1", "20000000"), ("5", "4"), ("-1", "2")):
        with pytest.raises(ValueError, match="is not a range of at most"):
            bounded_range(lo, hi, "VLAN")
    with pytest.raises(ValueError):
        vlan_set("1-20000000")
    with pytest.raises(ValueError):
        list(expand("swp1-9999999"))

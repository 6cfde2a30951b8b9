"""A gateway's actual state is recorded at most each ``ACTUAL_EVERY_S``, and a state slow to encode
less often: its encoding takes at most ``ACTUAL_COST_SHARE`` of the time. A gateway holding 100,000
remote MACs took 0.25 s to encode (and as long to store) at every attach there, each second. The
clock is the test's: no timing is measured."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from silonet.reconcile import worker as W


@pytest.mark.parametrize("encode_s", [0.0, 0.001, 0.02, 0.25, 3.0])
def test_the_gap_grows_with_what_encoding_took(monkeypatch: pytest.MonkeyPatch, encode_s: float) -> None:
    clock = [100.0]
    monkeypatch.setattr(W.time, "perf_counter", lambda: clock[0])

    def encode(actual: object) -> dict:
        clock[0] += encode_s
        return {"encoded": actual}

    monkeypatch.setattr(W, "actual_dict", encode)
    me = SimpleNamespace(_actual_gap=W.ACTUAL_EVERY_S)
    assert W.Worker._encoded(me, "state") == {"encoded": "state"}  # type: ignore[arg-type]
    assert me._actual_gap == pytest.approx(max(W.ACTUAL_EVERY_S, encode_s / W.ACTUAL_COST_SHARE))
    assert me._actual_gap >= W.ACTUAL_EVERY_S and encode_s <= W.ACTUAL_COST_SHARE * me._actual_gap + 1e-12

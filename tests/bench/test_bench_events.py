"""`silonet bench events` end to end on a real `silonet serve` (memory driver): every attach is
heard on the stream (intent, then realized) and by the webhook, the figures and the PNG are saved
(their values are not judged: machines are shared and noisy)."""

from __future__ import annotations

import json
from pathlib import Path

from silonet.bench import events


def test_bench_events_small(tmp_path: Path) -> None:
    figures = events.main(5, tmp_path / "out", tmp_path / "work")
    assert figures["attach_rtt_n"] == figures["stream_intent_n"] == figures["stream_realized_n"] == 5, figures
    assert figures["webhooks"] and figures["webhook_intent_n"] == 5, figures
    saved = json.loads((tmp_path / "out" / "bench-events.json").read_text())
    assert saved["stream_intent_p50_ms"] > 0 and (tmp_path / "out" / "bench-events.png").stat().st_size > 0
    assert not (tmp_path / "work" / "server" / "server.pid").exists()  # the server was stopped

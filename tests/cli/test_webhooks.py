"""``silonet webhook create|list|delete|deliveries`` on the local store (the server's path is
tests/e2e/test_webhooks_serve.py's): tables and JSON, and one error line naming the field and
the rule for each refusal (exit 1), nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from silonet.cli import webhooks as cli_webhooks
from silonet.store.events import EVENT_TYPES
from tests.support.cli import silonet

HOOK = "http://127.0.0.1:9/hook"
SECRET = "env:SILONET_SECRET_CLI_HOOK"


def test_create_list_deliveries_delete(datadir: Path) -> None:
    made = silonet(datadir, "webhook", "create", HOOK, "--secret", SECRET, "--event", "attachment", "--event",
                   "intent", "--json")
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert (hook["url"], hook["secret"], hook["events"]) == (HOOK, SECRET, ["attachment", "intent"])
    table = silonet(datadir, "webhook", "list")
    assert table.returncode == 0 and HOOK in table.stdout and SECRET in table.stdout, table.stdout
    assert json.loads(silonet(datadir, "webhook", "list", "--json").stdout) == [hook]
    # the webhook's own creation is an intent event it takes: its first delivery, pending (no server sends here)
    shown = silonet(datadir, "webhook", "deliveries", str(hook["id"]), "--json")
    assert shown.returncode == 0, shown.stderr
    (ping,) = json.loads(shown.stdout)
    assert (ping["event_type"], ping["state"], ping["attempts"]) == ("intent", "pending", [])
    rendered = silonet(datadir, "webhook", "deliveries", str(hook["id"]))
    assert "pending" in rendered.stdout and f"Deliveries of webhook {hook['id']}" in rendered.stdout
    gone = silonet(datadir, "webhook", "delete", str(hook["id"]))
    assert gone.returncode == 0 and f"deleted webhook {hook['id']}" in gone.stdout, gone.stderr
    assert json.loads(silonet(datadir, "webhook", "list", "--json").stdout) == []
    audit = silonet(datadir, "audit", "--json").stdout
    assert f"webhook/{hook['id']}" in audit


def test_refusals_are_one_line_each(datadir: Path) -> None:
    for args, line in (
        (["create", "ftp://x", "--secret", SECRET], "error: url: must be an http:// or https:// URL"),
        (["create", HOOK, "--secret", "hunter2"], "error: secret: must be a reference"),
        (["create", HOOK, "--secret", "env:PATH"], "error: secret: env: may name only a variable SILONET_SECRET_"),
        (["create", HOOK, "--secret", SECRET, "--event", "nope"], "error: events: 'nope' is not an event type"),
        (["delete", "42"], "error: id: webhook '42' does not exist"),
        (["deliveries", "42"], "error: id: webhook '42' does not exist"),
        (["deliveries", "1", "--limit", "0"], "error: limit: 0: deliveries per page must be 1..1000"),
        (["delete", "x"], "error: id: 'x' is not an integer"),
        (["deliveries", "1", "--before", "1" + "0" * 30], "error: before: 1" + "0" * 30 + ": a delivery id"),
    ):
        p = silonet(datadir, "webhook", *args)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(line), (args, p.stderr)
        assert "hunter2" not in p.stderr and "Traceback" not in p.stderr
    assert json.loads(silonet(datadir, "webhook", "list", "--json").stdout) == []


def test_the_cli_names_every_event_type() -> None:
    assert cli_webhooks.EVENT_TYPES == EVENT_TYPES  # its own copy: the CLI imports no SQLAlchemy module for it

"""``silonet webhook create|list|delete|deliveries``: where events are POSTed (``/v1/webhooks``), on
the local store or a server alike. The secret is given as a reference, never as the secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.text import Text

from silonet.cli import params, render
from silonet.cli.backend import Backend

JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]
IdArg = Annotated[int, typer.Argument(help="the webhook's id (`silonet webhook list`)", show_default=False,
                                      parser=params.number("id"))]
EVENT_TYPES = ("intent", "attachment", "gateway")  # store/events.EVENT_TYPES (not imported: no SQLAlchemy here)


def show(data: list[dict[str, Any]]) -> None:
    render.table("Webhooks", ["id", "url", "events", "secret", "created", "by"],
                 [[w["id"], w["url"], ", ".join(w["events"]), w["secret"], w["created"][:19], w["created_by"]]
                  for w in data])


def _last(attempts: list[dict[str, Any]]) -> str:
    if not attempts:
        return ""
    a = attempts[-1]
    return f"{a['status'] if a['status'] is not None else '-'} {a['error'] or ''} ({a['ms']} ms)".strip()


def deliveries(data: list[dict[str, Any]], webhook_id: int) -> None:
    style = {"delivered": "green", "pending": "yellow", "failed": "red"}
    render.table(f"Deliveries of webhook {webhook_id} (newest first)",
                 ["id", "event", "type", "state", "attempts", "last attempt", "next try"],
                 [[d["id"], d["event_id"], d["event_type"], Text(d["state"], style=style.get(d["state"], "white")),
                   len(d["attempts"]), _last(d["attempts"]), (d["next_at"] or "")[:19]] for d in data])


def commands(backend: Callable[[], Backend]) -> typer.Typer:
    """The ``webhook`` commands, through ``backend()`` (the CLI's local store or server)."""
    app = typer.Typer(help="Webhooks (admin): events POSTed to a URL, signed with a secret (X-Silonet-Signature).",
                      no_args_is_help=True)

    @app.command("create")
    def create(
        url: Annotated[str, typer.Argument(help="http:// or https:// URL the events are POSTed to",
                                           show_default=False)],
        secret: Annotated[str, typer.Option(help="reference to the signing secret, never the secret: "
                                                 "env:SILONET_SECRET_<NAME> or file:<path in SILONET_SECRETS_DIR>")],
        event: Annotated[list[str] | None, typer.Option(help=f"an event type it takes ({', '.join(EVENT_TYPES)}); "
                                                             "repeat; default all")] = None,
        json_: JsonOpt = False,
    ) -> None:
        """Register a webhook: events committed from now on are POSTed to URL."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if event:
            body["events"] = event
        data = backend().webhook_create(body)
        render.as_json(data) if json_ else show([data])

    @app.command("list")
    def list_(json_: JsonOpt = False) -> None:
        """Every webhook (secrets as references)."""
        b = backend()
        params.note_if_empty_local(b)
        data = b.webhook_list()
        render.as_json(data) if json_ else show(data)

    @app.command("delete")
    def delete(webhook_id: IdArg) -> None:
        """Delete a webhook and its deliveries: nothing more is sent to it."""
        backend().webhook_delete(webhook_id)
        render.out.print(f"deleted webhook {webhook_id}")

    @app.command("deliveries")
    def list_deliveries(
        webhook_id: IdArg,
        limit: Annotated[int, typer.Option(help="how many, 1..1000", parser=params.number("limit"))] = 50,
        before: Annotated[int | None, typer.Option(help="only deliveries older than this id (the next page)",
                                                   parser=params.number("before"))] = None,
        json_: JsonOpt = False,
    ) -> None:
        """A webhook's deliveries, newest first: state, attempts, the last attempt's answer, the next try."""
        data = backend().webhook_deliveries(webhook_id, limit, before)
        render.as_json(data) if json_ else deliveries(data, webhook_id)

    return app

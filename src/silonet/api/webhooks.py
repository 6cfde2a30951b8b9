"""``/v1/webhooks`` (README, "Webhooks"): admins register where events are POSTed and read what
became of each delivery (service/webhooks.py); the sending is service/dispatch.py's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from silonet.api import errors
from silonet.service import Manager
from silonet.service import webhooks as W
from silonet.service.auth import Principal

IdPath = Annotated[int, Path(ge=1, le=W.ID_MAX, description="the webhook's id")]


def router(m: Manager, caller: Callable[..., Any]) -> APIRouter:
    """The routes over ``m``; ``caller`` is the API's token check (``api.app``)."""
    r = errors.resource_router("/v1/webhooks", "webhooks")
    who_calls = Depends(caller)  # a default, not Annotated: a local cannot be named in an annotation

    @r.post("", status_code=201)
    def create_webhook(body: W.WebhookIn, who: Principal = who_calls) -> W.WebhookOut:
        """Events committed from now on are POSTed to ``url``, signed with the secret the reference names
        (X-Silonet-Signature: sha256=<hex HMAC-SHA256 of the body>)."""
        who.require_admin("creating a webhook")
        return W.create(m, body, who.actor)

    @r.get("")
    def list_webhooks(who: Principal = who_calls) -> list[W.WebhookOut]:
        who.require_admin("listing webhooks")
        return W.list_(m)

    @r.get("/{webhook_id}")
    def get_webhook(webhook_id: IdPath, who: Principal = who_calls) -> W.WebhookOut:
        who.require_admin("reading a webhook")
        return W.get(m, webhook_id)

    @r.delete("/{webhook_id}", status_code=204)
    def delete_webhook(webhook_id: IdPath, who: Principal = who_calls) -> Response:
        """The webhook and its deliveries: nothing more is sent to it."""
        who.require_admin("deleting a webhook")
        W.delete_(m, webhook_id, who.actor)
        return Response(status_code=204)

    @r.get("/{webhook_id}/deliveries")
    def list_deliveries(
        webhook_id: IdPath,
        limit: Annotated[int, Query(ge=W.DELIVERIES_LIMIT[0], le=W.DELIVERIES_LIMIT[1])] = 100,
        before: Annotated[int | None, Query(ge=1, le=W.BEFORE_MAX, description=(
            "deliveries older than this id (the last id of the previous page)"))] = None,
        who: Principal = who_calls,
    ) -> list[W.DeliveryOut]:
        """The webhook's deliveries, newest first, each with its attempts."""
        who.require_admin("a webhook's deliveries")
        return W.deliveries(m, webhook_id, limit, before)

    return r

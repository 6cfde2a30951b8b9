"""The operator's console at ``/ui``: a static shell and a little vanilla JS, no build step.

The shell needs no token (it holds no data); the page asks for one and calls the v1 API with it,
so the API stays the only place that decides who sees what. Everything is served from the
package: the page works offline, and its Content-Security-Policy lets it load nothing from
anywhere else.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _read(name: str) -> bytes:
    return resources.files("silonet.api").joinpath("ui", name).read_bytes()


@router.get("/ui")
def shell() -> Response:
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/ui/")
def shell_slash() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui/static/{name}")
def asset(name: str) -> Response:
    """Only the listed files: a name is never turned into a path."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail="no such asset")
    return Response(_read(name), media_type=f"{ASSETS[name]}; charset=utf-8", headers=HEADERS)

"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served by silonet itself:
FastAPI's defaults load them from a CDN, so on a management network without Internet access the
pages stayed blank. The files come from the ``fastapi-offline`` package (a maintained copy of
swagger-ui-dist and ReDoc's standalone bundle); this module only points FastAPI's own page
builders at them. No token is needed: the pages hold no data, the API behind them does.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

STATIC = "/docs/static"
# The pages may load from silonet only: ReDoc's bundle would fetch its maker's logo from a CDN, and
# Swagger UI's validator badge an image from its maker's site (validatorUrl: off below).
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """Behind a proxy that mounts silonet under a prefix, the URLs keep the prefix."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def _headed(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(HEADERS)
    return page


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    root = _root(request)
    return _headed(get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} API",
        swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC}/favicon.png",
        swagger_ui_parameters={**(request.app.swagger_ui_parameters or {}), "validatorUrl": None}))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return _headed(get_redoc_html(openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} API",
                                  redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
                                  redoc_favicon_url=f"{root}{STATIC}/favicon.png", with_google_fonts=False))


@router.get(STATIC + "/{name}")
def asset(name: str) -> FileResponse:
    """Only the listed files: a name is never turned into a path of its own."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail="no such asset")
    path = resources.files("fastapi_offline").joinpath("static", name)
    return FileResponse(str(path), media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400",
                                                                     "X-Content-Type-Options": "nosniff"})

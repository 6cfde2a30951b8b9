"""The one place where errors become HTTP statuses and the one error body shape."""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from silonet.errors import Conflict, DeviceError, Forbidden, InvalidInput, NotFound, SilonetError, Unauthorized
from silonet.service.schemas import describe_errors


class TooLarge(SilonetError):
    """A request body over ``SILONET_MAX_BODY_BYTES``: refused before it is read further."""

    code = "too_large"
    template = "the request body is over the limit of {limit} bytes (SILONET_MAX_BODY_BYTES)"


class TooManyWaits(SilonetError):
    """A token with as many ``?wait=`` requests in flight as the limit allows."""

    code = "too_many_waits"
    template = ("this token already has {limit} requests waiting (?wait=; SILONET_MAX_WAITS_PER_TOKEN is "
                "{limit}): retry when one ends, or without wait and poll the status")


STATUS: dict[type[SilonetError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    DeviceError: 502,
    Unauthorized: 401,
    Forbidden: 403,
    TooLarge: 413,
    TooManyWaits: 429,
}


class ProblemBody(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    error: str
    field: str | None = Field(description="the field of the first problem")
    message: str = Field(description="the first problem")
    problems: list[ProblemBody] = Field(description="every problem of the request, the first one first (a request "
                                                    "with three mistakes names all three)")


def status_of(err: SilonetError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def body(code: str, field: str | None, message: str, problems: list[SilonetError] | None = None) -> dict:
    """The one error body: ``field``/``message`` of the first problem, ``problems`` all of them."""
    listed = [{"field": p.field, "message": p.message} for p in problems] if problems else [
        {"field": field, "message": message}]
    return {"error": code, "field": field, "message": message, "problems": listed}


def install(app: FastAPI) -> None:
    @app.exception_handler(SilonetError)
    async def _silonet(_req: Request, err: SilonetError) -> JSONResponse:
        status = status_of(err)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body(err.code, err.field, err.message, err.problems), status_code=status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, err: RequestValidationError) -> JSONResponse:
        inv = describe_errors(list(err.errors()), data=getattr(err, "body", None))  # names items by their names
        return JSONResponse(body(inv.code, inv.field, inv.message, inv.problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8): malformed input
            return JSONResponse(body("invalid", "body", "body: not valid JSON (UTF-8 text expected)"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            err.status_code, "error")
        headers = dict(err.headers or {})
        if err.status_code == 405:  # Starlette names the first route's methods only; Allow lists them all
            headers["Allow"] = _allowed(req) or headers.get("Allow", "")
        return JSONResponse(body(code, None, str(err.detail)), status_code=err.status_code, headers=headers)


def _allowed(req: Request) -> str | None:
    """Every method the path serves, as the OpenAPI document lists them."""
    for template, operations in req.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/}]+\}", "[^/]+", template), req.url.path):
            return ", ".join(sorted(m.upper() for m in operations))
    return None


def resource_router(prefix: str, tag: str) -> APIRouter:
    """A resource's routes (tenants, webhooks...): every error status they answer documented with
    the one error body."""
    return APIRouter(prefix=prefix, tags=[tag],
                     responses={code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)})

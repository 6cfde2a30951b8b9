"""The one place where errors become HTTP statuses and the one error body shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from silonet.errors import Conflict, DeviceError, InvalidInput, NotFound, SilonetError
from silonet.service.schemas import describe_errors

STATUS: dict[type[SilonetError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    DeviceError: 502,
}


class ErrorBody(BaseModel):
    error: str
    field: str | None
    message: str


def status_of(err: SilonetError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def body(code: str, field: str | None, message: str) -> dict:
    return {"error": code, "field": field, "message": message}


def install(app: FastAPI) -> None:
    @app.exception_handler(SilonetError)
    async def _silonet(_req: Request, err: SilonetError) -> JSONResponse:
        return JSONResponse(body(err.code, err.field, err.message), status_code=status_of(err))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, err: RequestValidationError) -> JSONResponse:
        inv = describe_errors(list(err.errors()))
        return JSONResponse(body(inv.code, inv.field, inv.message), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            err.status_code, "error")
        return JSONResponse(body(code, None, str(err.detail)), status_code=err.status_code)

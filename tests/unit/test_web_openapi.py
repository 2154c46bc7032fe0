"""``GET /openapi.json``: a valid OpenAPI 3.1 description of exactly the routes served."""

from __future__ import annotations

import json

from aiohttp import web
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from exchange_app.web import install
from exchange_app.web.openapi import SPEC
from exchange_app.web.views import SECURITY_HEADERS
from tests.unit.test_web_auth import ring_with
from tests.unit.test_web_views import Exchange, serve


def served_routes(application: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route ``install`` adds; a static folder as
    ``/static/{file}``."""
    found = set()
    for route in application.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if path is None:  # a static folder
            path = info["prefix"] + "/{file}"
        found.add((route.method, path))
    return found


def described_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in SPEC["paths"].items()
        for method in operations
        if not method.startswith("x-")
    }


def test_every_route_is_described_and_nothing_else() -> None:
    application = web.Application()
    install(application, Exchange().services())
    assert described_routes() == served_routes(application)


def test_the_description_is_valid_openapi_3_1() -> None:
    document = json.loads(json.dumps(SPEC))  # as served
    errors = [error.message for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert not errors, errors[:5]
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_key_operations_are_marked_and_public_ones_open() -> None:
    security = {
        (method.upper(), path): operation["security"]
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
    }
    for route in [("POST", "/orders"), ("GET", "/accounts/{account}"), ("GET", "/metrics")]:
        assert security[route] == [{"bearer": []}], route
    for route in [("GET", "/instruments"), ("GET", "/orderbook/{instrument}"), ("GET", "/")]:
        assert {} in security[route], route
    assert SPEC["paths"]["/metrics"]["get"]["x-admin-key"] is True


async def test_anyone_reads_it_with_the_security_headers() -> None:
    ring, _ = ring_with(("alice", False))
    client = await serve(Exchange().services(keys=ring))
    try:
        answer = await client.get("/openapi.json")
        assert answer.status == 200 and answer.content_type == "application/json"
        assert await answer.json() == json.loads(json.dumps(SPEC))
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value
    finally:
        await client.close()

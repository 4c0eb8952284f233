"""The OpenAPI description: served as stored, and true to the routes."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import schemathesis
from schemathesis.core.result import Ok

from authserver.api.openapi import get_description

ROOT = Path(__file__).resolve().parent.parent
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Flask adds HEAD to every GET route and handles OPTIONS on every route.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}


def get_served_operations(app) -> set[tuple[str, str]]:
    """Return (path, method) for every route of ``app``, in OpenAPI syntax."""
    operations = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            operations.add((path, method))
    return operations


def get_described_operations() -> set[tuple[str, str]]:
    operations = set()
    for path, item in get_description()["paths"].items():
        for method in item.keys() & HTTP_METHODS:
            operations.add((path, method.upper()))
    return operations


def test_openapi_routes_match_description(app):
    assert get_served_operations(app) == get_described_operations()


def test_openapi_served_equals_package_file(client):
    stored = json.loads((ROOT / "authserver" / "openapi.json").read_text("utf-8"))

    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == stored


def test_openapi_is_openapi_3_1():
    assert get_description()["openapi"].startswith("3.1.")


def test_openapi_every_operation_loads():
    schema = schemathesis.openapi.from_dict(get_description())

    results = list(schema.get_all_operations())

    assert len(results) == len(get_described_operations())
    assert all(isinstance(result, Ok) for result in results), results


def test_openapi_oauth_endpoints_take_form_bodies():
    """RFC 6749 section 3.2: token endpoint parameters are form-encoded."""
    paths = get_description()["paths"]

    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert list(content) == ["application/x-www-form-urlencoded"], path


def test_openapi_client_endpoints_document_errors():
    paths = get_description()["paths"]

    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "400", "401", "413", "503"} <= responses.keys(), path


def test_openapi_token_endpoint_documents_rate_limit():
    responses = get_description()["paths"]["/oauth/token"]["post"]["responses"]

    assert responses["429"] == {"$ref": "#/components/responses/RateLimited"}


def test_openapi_every_operation_documents_413():
    for path, item in get_description()["paths"].items():
        for method in item.keys() & HTTP_METHODS:
            assert "413" in item[method]["responses"], (path, method)


def test_openapi_security_schemes_are_basic_and_bearer():
    schemes = get_description()["components"]["securitySchemes"]

    assert schemes["clientBasic"] == schemes["clientBasic"] | {
        "type": "http",
        "scheme": "basic",
    }
    assert schemes["bearer"] == schemes["bearer"] | {
        "type": "http",
        "scheme": "bearer",
    }


def test_openapi_api_requires_bearer():
    operation = get_description()["paths"]["/api/me"]["get"]

    assert operation["security"] == [{"bearer": ["profile"]}]


def test_openapi_is_package_data():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")

    files = parser["options.package_data"]["authserver"].split()

    assert "openapi.json" in files

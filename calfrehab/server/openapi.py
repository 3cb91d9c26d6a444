"""The OpenAPI 3.1 description of the service (``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from calfrehab.engine import api

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "integer"},
            "message": {"type": "string", "description": "what is wrong, in words"},
            "problems": {"type": "array", "items": {"type": "object"},
                         "description": "each offending field or resource element"},
        },
    }},
}


_ANY_JSON = {"application/json": {"schema": {"type": "object"}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {400: "bad JSON, an invalid case file or Bundle (problems name each field)",
             401: "missing or invalid JWT", 404: "unknown service or card",
             412: "prefetch missing", 413: "body too large", 415: "not JSON",
             422: "the rules could not decide", 503: "busy; retry", 504: "took too long"}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": words[c], "content": error} for c in codes}


def openapi_document(server_url: str) -> dict[str, Any]:
    case_schema = api.case_json_schema()
    case_schema.pop("$schema", None)
    json_body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Case"}}}}
    common = (400, 401, 413, 415, 503, 504)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "calfrehab",
            "version": api.ENGINE_VERSION,
            "description": (
                "Decision support for calf rehabilitation: a CDS Hooks 2.0 service "
                "(patient-view) and a JSON API. Every call carries a signed JWT "
                "(Authorization: Bearer) from a trusted issuer; see docs/integration.md."),
        },
        "servers": [{"url": server_url}],
        "components": {
            "schemas": {"Case": case_schema, "Error": _ERROR},
            "securitySchemes": {"cdsJwt": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        },
        "security": [{"cdsJwt": []}],
        "paths": {
            "/v1/decide": {"post": {
                "summary": "Decide a case file",
                "description": ("The decision document, byte for byte what `calfrehab next "
                                "--json` prints (decision_id aside). Recorded in the audit "
                                "trail unless ?record=false."),
                "parameters": [{"name": "record", "in": "query", "required": False,
                                "schema": {"type": "boolean", "default": True}}],
                "requestBody": json_body,
                "responses": {"200": {"description": "the decision document",
                                      "content": _ANY_JSON},
                              **_errors(*common, 422)},
            }},
            "/v1/explain": {"post": {
                "summary": "Explain a case file",
                "description": "HOW, WHY-NOT and sources: what `calfrehab explain --json` prints.",
                "requestBody": json_body,
                "responses": {"200": {"description": "the explanation",
                                      "content": _ANY_JSON},
                              **_errors(*common, 422)},
            }},
            "/cds-services": {"get": {
                "summary": "CDS Hooks discovery",
                "responses": {"200": {"description": "the services, with prefetch templates"},
                              **_errors(401)},
            }},
            f"/cds-services/{api.CDS_SERVICE_ID}": {"post": {
                "summary": "CDS Hooks patient-view service: cards",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": api.cds_hook_schema()}}},
                "responses": {"200": {"description": "{\"cards\": [...]}"},
                              **_errors(*common, 412, 422)},
            }},
            f"/cds-services/{api.CDS_SERVICE_ID}/feedback": {"post": {
                "summary": "CDS Hooks feedback: recorded in the audit trail as overrides",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": api.cds_feedback_schema()}}},
                "responses": {"200": {"description": (
                    "{\"recorded\": n, \"items\": [{card, outcome, status, message}]}: each "
                    "item answered on its own; status recorded, already recorded, unknown or "
                    "invalid")},
                              **_errors(*common)},
            }},
            "/openapi.json": {"get": {
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401)},
            }},
        },
    }

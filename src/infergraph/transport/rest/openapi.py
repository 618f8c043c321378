"""A minimal OpenAPI description of a component's REST API (``/seldon.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["component_openapi"]


def component_openapi(title: str) -> dict[str, Any]:
    message = {"$ref": "#/components/schemas/SeldonMessage"}
    body = {"required": True, "content": {"application/json": {"schema": message}}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": message}}}}
    post = {"requestBody": body, "responses": ok}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0"},
        "paths": {
            "/api/v1.0/predictions": {"post": post},
            "/api/v1.0/feedback": {
                "post": {
                    **post,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Feedback"}
                            }
                        },
                    },
                }
            },
            "/transform-input": {"post": post},
            "/transform-output": {"post": post},
            "/route": {"post": post},
            "/aggregate": {"post": post},
            "/health/status": {"get": {"responses": ok}},
            "/metadata": {"get": {"responses": {"200": {"description": "Model metadata"}}}},
        },
        "components": {
            "schemas": {
                "SeldonMessage": {
                    "type": "object",
                    "properties": {
                        "data": {
                            "type": "object",
                            "properties": {
                                "names": {"type": "array", "items": {"type": "string"}},
                                "ndarray": {"type": "array", "items": {}},
                                "tensor": {"type": "object"},
                                "tftensor": {"type": "object"},
                            },
                        },
                        "strData": {"type": "string"},
                        "binData": {"type": "string", "format": "byte"},
                        "jsonData": {},
                        "meta": {"type": "object"},
                    },
                },
                "Feedback": {
                    "type": "object",
                    "properties": {
                        "request": message,
                        "response": message,
                        "truth": message,
                        "reward": {"type": "number"},
                    },
                },
            }
        },
    }

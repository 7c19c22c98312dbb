"""GET /api/v1/openapi.json: the OpenAPI 3 document of the native API."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.openapi import build_openapi

bp = Blueprint("openapi_doc", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document, with this deployment's limits and base URL."""
    return jsonify(build_openapi(current_app.config["ATELIER"]))

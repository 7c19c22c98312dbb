"""The OpenAPI 3 document of the native JSON API (/api/v1), built from the deployment's limits."""
from __future__ import annotations

from typing import Any

NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_INT = {"type": "integer", "nullable": True}
NULLABLE_NUMBER = {"type": "number", "nullable": True}
DATE = {"type": "string", "format": "date-time"}
NULLABLE_DATE = {"type": "string", "format": "date-time", "nullable": True}


def _obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict, *, body: dict | None = None, params: list | None = None,
        public: bool = False, tags: list[str] | None = None) -> dict:
    operation: dict[str, Any] = {"summary": summary, "tags": tags or [],
                                 "responses": {**responses, "default": _json(_ref("Error"), "Error")}}
    if body is not None:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = params
    if public:
        operation["security"] = []
    return operation


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


PAGING = [_query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size (default 20)."),
          _query("cursor", {"type": "string"}, "next_cursor of the previous page.")]
GENERATING_HEADERS = [
    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200},
     "description": "A retry with the same key and body returns the first response and is charged once."},
    {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string", "enum": ["respond-async"]},
     "description": "respond-async: answer 202 with a job at once; poll GET /jobs/{id} or pass webhook_url."},
]


def _schemas(settings) -> dict:
    max_n = min(settings.generation_max_images, settings.gpu_max_images)
    common = {
        "model": {"type": "string", "description": "Model id (default: the first configured model)."},
        "negative_prompt": {"type": "string", "maxLength": settings.gpu_max_prompt_chars},
        "n": {"type": "integer", "minimum": 1, "maximum": max_n, "default": 1},
        "steps": {"type": "integer", "minimum": 1, "maximum": settings.gpu_max_steps, "default": 20},
        "guidance": {"type": "number", "minimum": 0, "maximum": settings.gpu_max_guidance, "default": 7.5},
        "scheduler": {"type": "string", "description": "ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc, "
                                                       "pndm, lms (A1111 names are accepted too)."},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1},
        "webhook_url": {"type": "string", "format": "uri", "description": "With Prefer: respond-async, receives "
                        "a signed POST (X-Atelier-Signature: sha256=HMAC(secret, timestamp + '.' + body))."},
    }
    image = _obj({
        "id": {"type": "string", "format": "uuid"}, "kind": {"type": "string"}, "title": NULLABLE_STRING,
        "width": {"type": "integer"}, "height": {"type": "integer"}, "mime_type": NULLABLE_STRING,
        "byte_size": NULLABLE_INT, "content_hash": NULLABLE_STRING, "prompt": NULLABLE_STRING,
        "negative_prompt": NULLABLE_STRING, "seed": NULLABLE_INT, "steps": NULLABLE_INT, "guidance": NULLABLE_NUMBER,
        "scheduler": NULLABLE_STRING, "model": NULLABLE_STRING, "strength": NULLABLE_NUMBER,
        "liked": {"type": "boolean"}, "public": {"type": "boolean"}, "template": {"type": "boolean"},
        "mine": {"type": "boolean"}, "created_at": DATE, "published_at": NULLABLE_DATE,
        "url": {"type": "string"}, "thumbnail_url": NULLABLE_STRING,
        "parent": {**_obj({"id": {"type": "string"}, "kind": {"type": "string"}}, ["id", "kind"]), "nullable": True},
        "children": {"type": "array", "items": _obj({"id": {"type": "string"}, "kind": {"type": "string"}})},
    }, ["id", "kind", "width", "height", "liked", "public", "created_at", "url"])
    return {
        "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"},
                                     "field": {"type": "string"}}, ["code", "message"])}, ["error"]),
        "Message": _obj({"message": {"type": "string"}}, ["message"]),
        "User": _obj({"id": {"type": "string"}, "email": {"type": "string"}, "verified": {"type": "boolean"},
                      "admin": {"type": "boolean"}, "referral_code": {"type": "string"}, "created_at": NULLABLE_DATE,
                      "verified_at": NULLABLE_DATE, "last_login_at": NULLABLE_DATE},
                     ["id", "email", "verified"]),
        "UserEnvelope": _obj({"user": _ref("User")}, ["user"]),
        "Token": _obj({"id": {"type": "string"}, "name": NULLABLE_STRING, "prefix": NULLABLE_STRING,
                       "created_at": NULLABLE_DATE, "last_used_at": NULLABLE_DATE, "secret": {"type": "string"}},
                      ["id"]),
        "Balance": _obj({"balance": {"type": "integer"}, "held": {"type": "integer"}, "next_expiry": NULLABLE_DATE,
                         "expiring_amount": {"type": "integer"}, "expiring": {"type": "array", "items": _obj(
                             {"expires_at": NULLABLE_DATE, "amount": {"type": "integer"}})}},
                        ["balance", "held"]),
        "LedgerEntry": _obj({"id": {"type": "string"}, "kind": {"type": "string"}, "amount": {"type": "integer"},
                             "change": {"type": "integer"}, "remaining": NULLABLE_INT, "expires_at": NULLABLE_DATE,
                             "status": NULLABLE_STRING, "hold_id": NULLABLE_STRING, "memo": NULLABLE_STRING,
                             "created_at": NULLABLE_DATE}, ["id", "kind", "amount", "change"]),
        "QuoteRequest": _obj({"kind": {"type": "string", "enum": ["image", "audio", "video"]},
                              "model": {"type": "string"}, "width": {"type": "integer"},
                              "height": {"type": "integer"}, "steps": {"type": "integer"},
                              "images": {"type": "integer"}, "seconds": {"type": "number"}}),
        "Quote": _obj({"kind": {"type": "string"}, "model": {"type": "string"}, "cost": {"type": "integer"},
                       "balance": {"type": "integer"}, "affordable": {"type": "boolean"}},
                      ["kind", "model", "cost", "balance", "affordable"]),
        "Referrals": _obj({"code": {"type": "string"}, "link": {"type": "string"},
                           "referred": {"type": "array", "items": {"type": "object"}},
                           "rewards_earned": {"type": "integer"}}, ["code", "link", "referred", "rewards_earned"]),
        "Image": image,
        "ImagePage": _obj({"items": {"type": "array", "items": _ref("Image")}, "next_cursor": NULLABLE_STRING},
                          ["items", "next_cursor"]),
        "ImageChanges": _obj({"title": NULLABLE_STRING, "liked": {"type": "boolean"}, "public": {"type": "boolean"}}),
        "GenerationRequest": _obj({"prompt": {"type": "string", "maxLength": settings.gpu_max_prompt_chars},
                                   "width": {"type": "integer", "minimum": 64, "maximum": 4096, "multipleOf": 8,
                                             "default": 512},
                                   "height": {"type": "integer", "minimum": 64, "maximum": 4096, "multipleOf": 8,
                                              "default": 512}, **common}, ["prompt"]),
        "EditRequest": _obj({"prompt": {"type": "string"},
                             "image_id": {"type": "string", "description": "A library image or a template."},
                             "template_id": {"type": "string"},
                             "mode": {"type": "string", "enum": ["img2img", "inpaint", "instruct"]},
                             "mask": {"type": "string", "description": "Base64 PNG; white is repainted."},
                             "mask_id": {"type": "string"},
                             "strength": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1},
                             "image_guidance": {"type": "number", "minimum": 0},
                             "width": {"type": "integer"}, "height": {"type": "integer"}, **common}, ["prompt"]),
        "EditUpload": _obj({"image": {"type": "string", "format": "binary"},
                            "mask": {"type": "string", "format": "binary"}, "prompt": {"type": "string"},
                            "mode": {"type": "string"}, "strength": {"type": "number"},
                            "steps": {"type": "integer"}, "n": {"type": "integer"}, "seed": {"type": "integer"}},
                           ["prompt"]),
        "VariationRequest": _obj({"prompt": {"type": "string"},
                                  "strength": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                                               "maximum": 1}, **common}),
        "UpscaleRequest": _obj({"prompt": {"type": "string"}, "noise_level": {"type": "integer", "minimum": 0,
                                                                             "maximum": 350},
                                "model": common["model"], "steps": common["steps"], "seed": common["seed"],
                                "webhook_url": common["webhook_url"]}),
        "Generated": _obj({"images": {"type": "array", "items": _ref("Image")},
                           "credits_charged": {"type": "integer"}}, ["images", "credits_charged"]),
        "Job": _obj({"id": {"type": "string"}, "operation": {"type": "string"},
                     "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                     "created_at": DATE, "started_at": NULLABLE_DATE, "finished_at": NULLABLE_DATE,
                     "webhook_url": NULLABLE_STRING,
                     "error": {**_obj({"status": {"type": "integer"}, "code": {"type": "string"},
                                       "message": {"type": "string"}}), "nullable": True},
                     "result": {**_obj({"images": {"type": "array", "items": _ref("Image")}}), "nullable": True}},
                    ["id", "operation", "state", "created_at"]),
        "Link": _obj({"token": {"type": "string"}, "url": {"type": "string"}, "kind": {"type": "string"},
                      "item_id": {"type": "string"}, "views": {"type": "integer"}, "created_at": DATE},
                     ["token", "url", "kind", "item_id", "views"]),
    }


def _generating(summary: str, request_schema: str, params: list | None = None) -> dict:
    return _op(summary, {"201": _json(_ref("Generated"), "The stored images and what they cost"),
                         "202": _json(_ref("Job"), "Queued (Prefer: respond-async)")},
               body=_body(_ref(request_schema), required=request_schema in ("GenerationRequest", "EditRequest")),
               params=[*(params or []), *GENERATING_HEADERS], tags=["images"])


def build_openapi(settings) -> dict:
    """The OpenAPI 3.0 document for this deployment (limits such as n and steps come from its config)."""
    from app.openapi_media import media_paths, media_schemas  # it builds on this module's helpers
    image_id = _path_param("image_id", "Image id (UUID).")
    no_content = {"204": {"description": "Done"}}
    binary = {"200": {"description": "The bytes", "content": {"image/*": {"schema": {"type": "string",
                                                                                    "format": "binary"}}}}}
    paths = {
        "/auth/register": {"post": _op("Create an account", {"201": _json(_ref("UserEnvelope"))}, public=True,
                                       tags=["auth"], body=_body(_obj({"email": {"type": "string"},
                                                                       "password": {"type": "string"},
                                                                       "referral_code": {"type": "string"}},
                                                                      ["email", "password"])))},
        "/auth/verify": {"post": _op("Verify an email address with the mailed token",
                                     {"200": _json(_ref("UserEnvelope"))}, public=True, tags=["auth"],
                                     body=_body(_obj({"token": {"type": "string"}}, ["token"])))},
        "/auth/resend-verification": {"post": _op("Mail a new verification link", {"202": _json(_ref("Message"))},
                                                  tags=["auth"])},
        "/auth/login": {"post": _op("Log in (session cookie)", {"200": _json(_ref("UserEnvelope"))}, public=True,
                                    tags=["auth"], body=_body(_obj({"email": {"type": "string"},
                                                                    "password": {"type": "string"},
                                                                    "remember": {"type": "boolean"}},
                                                                   ["email", "password"])))},
        "/auth/logout": {"post": _op("Log out", no_content, public=True, tags=["auth"])},
        "/auth/password-reset": {"post": _op("Mail a password reset link", {"202": _json(_ref("Message"))},
                                             public=True, tags=["auth"],
                                             body=_body(_obj({"email": {"type": "string"}}, ["email"])))},
        "/auth/password-reset/confirm": {"post": _op("Set a new password with the mailed token",
                                                     {"200": _json(_ref("Message"))}, public=True, tags=["auth"],
                                                     body=_body(_obj({"token": {"type": "string"},
                                                                      "password": {"type": "string"}},
                                                                     ["token", "password"])))},
        "/auth/change-password": {"post": _op("Change my password", {"200": _json(_ref("Message"))}, tags=["auth"],
                                              body=_body(_obj({"current_password": {"type": "string"},
                                                               "new_password": {"type": "string"}},
                                                              ["current_password", "new_password"])))},
        "/auth/change-email": {"post": _op("Change my email (confirmed by a mailed link)",
                                           {"202": _json(_obj({"message": {"type": "string"},
                                                               "pending_email": {"type": "string"}}))},
                                           tags=["auth"], body=_body(_obj({"password": {"type": "string"},
                                                                           "new_email": {"type": "string"}},
                                                                          ["password", "new_email"])))},
        "/me": {"get": _op("My account", {"200": _json(_ref("UserEnvelope"))}, tags=["auth"]),
                "delete": _op("Delete my account and everything in it", no_content, tags=["auth"],
                              body=_body(_obj({"password": {"type": "string"}}, ["password"])))},
        "/tokens": {"get": _op("My API tokens", {"200": _json(_obj({"tokens": {"type": "array",
                                                                              "items": _ref("Token")}},
                                                                  ["tokens"]))}, tags=["tokens"]),
                    "post": _op("Create an API token (its secret is shown once)",
                                {"201": _json(_obj({"token": _ref("Token")}, ["token"]))}, tags=["tokens"],
                                body=_body(_obj({"name": {"type": "string"}}, ["name"])))},
        "/tokens/{token_id}": {"delete": _op("Revoke an API token", no_content, tags=["tokens"],
                                             params=[_path_param("token_id", "Token id.")])},
        "/credits": {"get": _op("My balance, held credits and next expiry", {"200": _json(_ref("Balance"))},
                                tags=["credits"])},
        "/credits/ledger": {"get": _op("My ledger, newest first",
                                       {"200": _json(_obj({"entries": {"type": "array",
                                                                       "items": _ref("LedgerEntry")},
                                                           "next_cursor": NULLABLE_STRING},
                                                          ["entries", "next_cursor"]))},
                                       params=PAGING, tags=["credits"])},
        "/credits/quote": {"post": _op("What a request would cost; nothing is charged",
                                       {"200": _json(_ref("Quote"))}, body=_body(_ref("QuoteRequest")),
                                       tags=["credits"])},
        "/referrals": {"get": _op("My referral code, link, referred people and rewards",
                                  {"200": _json(_ref("Referrals"))}, tags=["referrals"])},
        "/images": {"get": _op("My library, newest first", {"200": _json(_ref("ImagePage"))}, tags=["images"],
                               params=[*PAGING, _query("liked", {"type": "boolean"}, "Only liked (or not)."),
                                       _query("public", {"type": "boolean"}, "Only published (or not)."),
                                       _query("kind", {"type": "string"}, "txt2img, img2img, upload, ..."),
                                       _query("model", {"type": "string"}, "Model id.")])},
        "/images/uploads": {"post": _op("Upload my own PNG, JPEG or WebP to edit from",
                                        {"201": _json(_ref("Image"))}, tags=["images"],
                                        body={"required": True, "content": {"multipart/form-data": {
                                            "schema": _obj({"image": {"type": "string", "format": "binary"},
                                                            "title": {"type": "string"}}, ["image"])}}})},
        "/images/generations": {"post": _generating("Text to image", "GenerationRequest")},
        "/images/edits": {"post": {**_generating("Edit an image: img2img, inpaint (mask) or instruct; source is "
                                                 "a library image, a template, or an upload in this request",
                                                 "EditRequest")}},
        "/images/{image_id}": {
            "get": _op("One image with its lineage (others' private images are 404)",
                       {"200": _json(_ref("Image"))}, params=[image_id], public=True, tags=["images"]),
            "patch": _op("Change title, liked or public on my image", {"200": _json(_ref("Image"))},
                         params=[image_id], body=_body(_ref("ImageChanges")), tags=["images"]),
            "delete": _op("Delete my image with its files", no_content, params=[image_id], tags=["images"]),
        },
        "/images/{image_id}/file": {"get": _op("The image's bytes", binary, params=[image_id], public=True,
                                               tags=["images"])},
        "/images/{image_id}/thumbnail": {"get": _op("The image's thumbnail", binary, params=[image_id],
                                                    public=True, tags=["images"])},
        "/images/{image_id}/variations": {"post": _generating("Variations of an image", "VariationRequest",
                                                              [image_id])},
        "/images/{image_id}/upscale": {"post": _generating("Upscale an image 4x", "UpscaleRequest", [image_id])},
        "/gallery": {"get": _op("Everyone's published images", {"200": _json(_ref("ImagePage"))}, params=PAGING,
                                public=True, tags=["images"])},
        "/templates": {"get": _op("Starter images anyone can edit from", {"200": _json(_ref("ImagePage"))},
                                  params=PAGING, public=True, tags=["images"])},
        "/jobs/{job_id}": {"get": _op("A job's state and result", {"200": _json(_ref("Job"))}, tags=["jobs"],
                                      params=[_path_param("job_id", "Job id (UUID).")])},
        "/jobs/{job_id}/cancel": {"post": _op("Cancel a queued job, or stop a running one",
                                              {"200": _json(_ref("Job"))}, tags=["jobs"],
                                              params=[_path_param("job_id", "Job id (UUID)."),
                                                      GENERATING_HEADERS[0]])},
        "/links": {"get": _op("My share links", {"200": _json(_obj({"items": {"type": "array",
                                                                              "items": _ref("Link")}},
                                                                  ["items"]))}, tags=["links"]),
                   "post": _op("Share my image, audio or video (exactly one id)", {"201": _json(_ref("Link"))},
                               tags=["links"], body=_body(_obj({"image_id": {"type": "string"},
                                                                "audio_id": {"type": "string"},
                                                                "video_id": {"type": "string"}})))},
        "/links/{token}": {"delete": _op("Revoke a share link", no_content, tags=["links"],
                                         params=[_path_param("token", "The link's token.")])},
        "/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3.0")},
                                     public=True, tags=["meta"])},
        **media_paths(),
    }
    paths["/images/edits"]["post"]["requestBody"]["content"]["multipart/form-data"] = {"schema": _ref("EditUpload")}
    paths["/images/generations"]["post"]["requestBody"]["content"]["application/json"]["example"] = {
        "prompt": "a lighthouse at dusk, oil painting", "width": 64, "height": 64, "steps": 2, "n": 1, "seed": 42}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Atelier API", "version": "1.0.0",
                 "description": "Generate images, music and music videos, keep them in a library, share them. "
                                "Errors are always {\"error\": {\"code\", \"message\", \"field\"?}}: 401 not logged "
                                "in, 402 not enough credits, 403 email not verified, 404 not yours or missing, "
                                "409 conflict, 413 too large, 422 a field is wrong (named in `field`), 429 slow down, "
                                "502/503/504 the GPU pool failed (nothing was charged)."},
        "servers": [{"url": settings.base_url.rstrip("/") + "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": {**_schemas(settings), **media_schemas(settings)},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token from POST /tokens."},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "The browser session from POST /auth/login (JSON bodies only)."},
            },
        },
    }

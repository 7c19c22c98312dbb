"""The OpenAPI document: valid OpenAPI 3, and true to the running server (fuzzed with schemathesis)."""
from __future__ import annotations

import io
import re
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# /api/v1 rules the document cannot describe, each with its reason.
UNDESCRIBED = {
    # Signed, expiring URLs to local-storage files: the key spans several path segments (OpenAPI path parameters
    # cannot) and the URL is only ever handed out by the server, never built by a client.
    ("GET", "/media/{}"),
}


def _fuzz(operation, base_url: str, headers: dict, examples: int, path_parameters: dict | None = None) -> None:
    """A few generated requests against one operation; raises on the first failed check."""

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        if path_parameters:
            case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)

    run()


def test_the_document_is_valid_openapi_3_and_covers_the_native_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    for path in ("/auth/login", "/credits", "/credits/quote", "/images", "/images/generations", "/images/edits",
                 "/images/{image_id}/variations", "/images/{image_id}/upscale", "/jobs/{job_id}",
                 "/jobs/{job_id}/cancel", "/links", "/tokens", "/referrals", "/gallery"):
        assert path in spec["paths"], path
    generation = spec["components"]["schemas"]["GenerationRequest"]["properties"]
    assert generation["n"]["maximum"] == 4  # the deployment's generation_max_images


@pytest.mark.settings(gpu_max_steps=2, generation_max_images=2, gpu_max_pixels=64 * 64)
def test_fuzzing_every_operation_finds_no_5xx_and_no_response_off_the_schema(client, live_url, make_user):
    """A few generated requests per operation (bounded so the whole run takes a minute or two)."""
    _, headers, _, _ = make_user(credit=100000)
    schema = (schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").json)
              .exclude(method="DELETE", path="/me").exclude(path="/auth/logout"))
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _fuzz(operation, f"{live_url}/api/v1", headers, 6)
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    # The success paths, for sure: the documented example, synchronously and as a job, must match the schema too.
    spec = client.get("/api/v1/openapi.json").json
    example = spec["paths"]["/images/generations"]["post"]["requestBody"]["content"]["application/json"]["example"]
    operation = schema["/images/generations"]["POST"]
    for extra in ({}, {"Prefer": "respond-async"}):
        case = operation.Case(body=example, media_type="application/json", headers=extra)
        response = case.call_and_validate(base_url=f"{live_url}/api/v1", headers=headers, checks=CHECKS)
        assert response.status_code == (202 if extra else 201)
    image_id = client.get("/api/v1/images", headers=headers).json["items"][0]["id"]
    for path in ("/images/{image_id}/variations", "/images/{image_id}/upscale"):
        case = schema[path]["POST"].Case(path_parameters={"image_id": image_id}, body={"steps": 2, "strength": 0.5},
                                         media_type="application/json")
        response = case.call_and_validate(base_url=f"{live_url}/api/v1", headers=headers, checks=CHECKS)
        assert response.status_code == 201, response.text


def test_every_api_v1_route_of_the_app_is_in_the_document(app, client):
    """A route added without its description fails here (path parameters compared by position, not name)."""
    documented = {(method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
                  for path, item in client.get("/api/v1/openapi.json").json["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    routes = {(method, re.sub(r"<[^>]+>", "{}", rule.rule.removeprefix("/api/v1")))
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert ("GET", "/video-projects/{}/schedule") in routes and ("POST", "/audio/uploads") in routes
    assert sorted(routes - documented - UNDESCRIBED) == []
    assert sorted(UNDESCRIBED - routes) == [], "an exclusion for a route that no longer exists"
    assert sorted(documented - routes) == [], "a documented operation the app does not serve"


def _seed_media(app, user_id: int) -> dict:
    """A ready uploaded clip and a rendered video (files in storage) owned by the user."""
    from app.extensions import db
    from app.models import Video
    from app.services.storage import get_storage
    from tests.video.conftest import make_wav

    with app.app_context():
        key = f"videos/{uuid.uuid4().hex}"
        get_storage().put(f"{key}.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64), "video/mp4")
        get_storage().put(f"{key}.png", b"\x89PNG\r\n\x1a\n" + bytes(32), "image/png")
        video = Video(public_id=uuid.uuid4(), user_id=user_id, storage_key=f"{key}.mp4", poster_key=f"{key}.png",
                      mime_type="video/mp4", byte_size=76, title="seeded", duration_seconds=1.0, fps=4, width=64,
                      height=64, frame_count=4, has_audio=False)
        db.session.add(video)
        db.session.commit()
        return {"wav": make_wav(seconds=1.0), "video": str(video.public_id)}


@pytest.mark.settings(gpu_max_steps=2, gpu_max_pixels=64 * 64, video_max_seconds=8, audio_max_seconds=8)
def test_fuzzing_audio_and_video_operations_on_real_ids_finds_no_5xx_and_no_response_off_the_schema(
        client, app, live_url, make_user):
    """The audio and video operations with ids that exist (the generic fuzz mostly reaches their 404s)."""
    user_id, headers, _, _ = make_user(credit=100000)
    base = f"{live_url}/api/v1"
    seeded = _seed_media(app, user_id)
    schema = schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").json)

    def call(method: str, path: str, expected: int, ids: str | None = None, **kwargs):
        case = schema[path][method].Case(path_parameters={"public_id": ids} if ids else None, **kwargs)
        response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        assert response.status_code == expected, response.text
        return response

    clip = call("POST", "/audio/uploads", 201, body={"audio": seeded["wav"], "title": "beat"},
                media_type="multipart/form-data").json()
    assert clip["status"] == "ready" and clip["duration"] == pytest.approx(1.0, abs=0.01)
    prompts = [{"at": 0, "prompt": "red", "seed": 1}, {"at": 0.5, "prompt": "blue", "seed": 2}]
    music = call("POST", "/video-projects", 201, body={"audio_id": clip["id"], "prompts": prompts, "width": 64,
                                                       "height": 64, "steps": 1, "fps": 4},
                 media_type="application/json").json()
    sweep = call("POST", "/video-projects", 201, body={"kind": "interpolation", "duration": 1, "prompts": prompts,
                                                       "width": 64, "height": 64, "steps": 1, "fps": 4},
                 media_type="application/json").json()
    schedule = call("GET", "/video-projects/{public_id}/schedule", 200, music["id"], query={"smooth": 0.5}).json()
    assert schedule["frames"] == 4 and schedule["points"][0]["position"] == 0
    whole = call("GET", "/audio/{public_id}/file", 200, clip["id"])
    assert whole.content == seeded["wav"]
    part = call("GET", "/audio/{public_id}/file", 206, clip["id"], headers={"Range": "bytes=0-99"})
    assert part.content == seeded["wav"][:100]
    call("GET", "/audio/{public_id}/file", 416, clip["id"], headers={"Range": f"bytes={len(seeded['wav'])}-"})
    assert call("GET", "/videos/{public_id}/file", 200, seeded["video"], query={"download": "1"}).headers[
        "content-disposition"][0].startswith("attachment")
    assert call("GET", "/videos/{public_id}/poster", 200, seeded["video"]).content.startswith(b"\x89PNG")

    failures = []
    ids = {"/audio/": clip["id"], "/video-projects/": sweep["id"], "/videos/": seeded["video"]}
    for result in schema.get_all_operations():
        operation = result.ok()
        prefix = next((p for p in ids if operation.path.startswith(p + "{")), None)
        if operation.method.upper() == "DELETE" or (prefix is None and not operation.path.startswith(
                ("/audio", "/video"))):
            continue
        try:
            _fuzz(operation, base, headers, 25, {"public_id": ids[prefix]} if prefix else None)
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)

    # The music project was left alone by the fuzz: render it for the batch, cancel, then every delete.
    call("POST", "/video-projects/{public_id}/render", 202, music["id"], body={"batch": True},
         media_type="application/json")
    assert call("POST", "/video-projects/{public_id}/cancel", 200, music["id"]).json()["status"] == "cancelled"
    call("DELETE", "/video-projects/{public_id}", 204, music["id"])
    call("DELETE", "/video-projects/{public_id}", 204, sweep["id"])
    call("DELETE", "/videos/{public_id}", 204, seeded["video"])
    call("DELETE", "/audio/{public_id}", 204, clip["id"])
    listed = {item["id"] for path in ("/audio", "/video-projects", "/videos")
              for item in next(iter(call("GET", path, 200).json().values()))}
    assert not listed & {clip["id"], music["id"], sweep["id"], seeded["video"]}


@pytest.mark.parametrize("body", [{"prompt": "drums\x00"}, {"prompt": "drums", "title": "t\x00"},
                                  {"prompt": "drums", "model": "tiny\x00"}, {"prompt": "drums", "title": "x" * 201}])
def test_audio_generation_refuses_nul_characters_and_long_titles_with_422_and_holds_nothing(client, make_user,
                                                                                           balance, body):
    """Was a 500 after the hold: PostgreSQL cannot store NUL in text, and titles are 200 characters at most."""
    user_id, headers, _, _ = make_user(credit=1000)
    response = client.post("/api/v1/audio/generations", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] in body
    assert balance(user_id) == (1000, 0)
    assert client.get("/api/v1/audio", headers=headers).json["audio"] == []


@pytest.mark.parametrize("body", [{"title": "t\x00"}, {"model": "tiny\x00"},
                                  {"prompts": [{"at": 0, "prompt": "red\x00", "seed": 1}]}])
def test_video_projects_refuse_nul_characters_with_422(client, make_user, body):
    """NUL in a title or model reached PostgreSQL (a 500); in a prompt it was stored and sent to the GPU."""
    _, headers, _, _ = make_user(credit=1000)
    base = {"kind": "interpolation", "duration": 1, "width": 64, "height": 64,
            "prompts": [{"at": 0, "prompt": "red", "seed": 1}]}
    response = client.post("/api/v1/video-projects", json={**base, **body}, headers=headers)
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] in body
    project = client.post("/api/v1/video-projects", json=base, headers=headers).json
    response = client.patch(f"/api/v1/video-projects/{project['id']}", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).json["prompts"][0]["prompt"] == "red"


def test_audio_upload_refuses_a_nul_in_the_title_with_422(client, make_user):
    """A NUL in the multipart title (or file name) is a 422, not a 500 from PostgreSQL."""
    from tests.video.conftest import make_wav

    _, headers, _, _ = make_user(credit=0)
    response = client.post("/api/v1/audio/uploads", headers=headers, content_type="multipart/form-data",
                           data={"audio": (io.BytesIO(make_wav(seconds=0.5)), "a.wav"), "title": "beat\x00"})
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == "title"
    assert client.get("/api/v1/audio", headers=headers).json["audio"] == []

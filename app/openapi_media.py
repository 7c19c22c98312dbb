"""The audio, video-project and video parts of the OpenAPI document (see app/openapi.py)."""
from __future__ import annotations

from app.openapi import (DATE, NULLABLE_DATE, NULLABLE_INT, NULLABLE_NUMBER, NULLABLE_STRING, _body, _json, _obj,
                         _op, _path_param, _query, _ref)

MAX_SEED = 2**63 - 1
NO_CONTENT = {"204": {"description": "Done"}}
ERRORS = {
    "400": "The body is not a JSON object.",
    "402": "Not enough credits for the quote.",
    "404": "Not yours, or no such id.",
    "409": "Not in a state that allows this (code names why).",
    "413": "The upload is over the size limit.",
    "415": "The body is not application/json.",
    "422": "A field is wrong (named in `field`).",
}


def _errors(*codes: str) -> dict:
    return {code: _json(_ref("Error"), ERRORS[code]) for code in codes}


def _file(*media_types: str, partial: bool = False) -> dict:
    content = {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}
    responses = {"200": {"description": "The bytes", "content": content}}
    if partial:
        responses["206"] = {"description": "The requested byte range (Range header)", "content": content}
        responses["416"] = _json(_ref("Error"), "The requested range is outside the file")
    return responses


def media_schemas(settings) -> dict:
    """Audio, VideoProject, Video and their request bodies, with this deployment's limits."""
    seed = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
    video = _obj({
        "id": {"type": "string", "format": "uuid"}, "title": NULLABLE_STRING, "duration": NULLABLE_NUMBER,
        "fps": NULLABLE_INT, "width": NULLABLE_INT, "height": NULLABLE_INT, "frames": NULLABLE_INT,
        "has_audio": {"type": "boolean"}, "byte_size": NULLABLE_INT, "url": {"type": "string"},
        "download_url": {"type": "string"}, "poster_url": {"type": "string"}, "created_at": DATE,
    }, ["id", "has_audio", "url", "download_url", "poster_url", "created_at"])
    prompt = _obj({"at": {"type": "number", "minimum": 0, "description": "Seconds; the first prompt is at 0."},
                   "prompt": {"type": "string", "minLength": 1, "maxLength": settings.gpu_max_prompt_chars},
                   "seed": seed}, ["prompt"])
    size = {"type": "integer", "minimum": 64, "maximum": 2048, "multipleOf": 8, "default": 512}
    project_settings = {
        "title": NULLABLE_STRING, "width": size, "height": size,
        "steps": {"type": "integer", "minimum": 1, "maximum": settings.gpu_max_steps, "default": 20},
        "fps": {"type": "integer", "minimum": 1, "maximum": 60, "default": settings.video_generation_fps},
        "guidance": {"type": "number", "minimum": 0, "maximum": settings.gpu_max_guidance, "default": 7.5},
        "smooth": {"type": "number", "minimum": 0, "maximum": 1, "default": 0,
                   "description": "0 follows the audio's beats, 1 moves at an even pace."},
        "model": {"type": "string", "description": "Model id (default: the first configured model)."},
        "duration": {"type": "number", "minimum": 0.25, "maximum": settings.video_max_seconds,
                     "description": "Seconds (interpolation videos; a music video lasts as long as its audio)."},
        "prompts": {"type": "array", "minItems": 1, "maxItems": 200, "items": prompt,
                    "description": "Timed prompts at strictly increasing times inside the video."},
        "start_image_id": {**NULLABLE_STRING, "format": "uuid",
                           "description": "An image I may see (mine, published or a template): the walk from the "
                                          "first prompt starts at this image instead of its seed (fitted to the "
                                          "video's size); null for none. 404 for an image I may not see."},
        "start_strength": {"type": "number", "minimum": 0.05, "maximum": 1, "default": 0.5,
                           "description": "How much of the first frame is made anew from the start image (low: "
                                          "close to the image); steps x start_strength must be at least 1."},
    }
    progress = _obj({"frames_done": {"type": "integer"}, "frames_total": {"type": "integer"},
                     "percent": {"type": "number"}, "eta_seconds": NULLABLE_NUMBER,
                     "frames_per_second": NULLABLE_NUMBER},
                    ["frames_done", "frames_total", "percent", "eta_seconds", "frames_per_second"])
    return {
        "Audio": _obj({
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["upload", "generated", "continuation"]},
            "status": {"type": "string", "enum": ["queued", "processing", "ready", "failed"]},
            "failure_reason": NULLABLE_STRING, "title": NULLABLE_STRING, "prompt": NULLABLE_STRING,
            "model": NULLABLE_STRING, "seed": NULLABLE_INT, "duration": NULLABLE_NUMBER,
            "sample_rate": NULLABLE_INT, "mime_type": NULLABLE_STRING, "byte_size": NULLABLE_INT,
            "waveform": {"type": "array", "items": {"type": "number"}, "nullable": True,
                         "description": "Peak amplitude per bucket, 0 to 1."},
            "url": {**NULLABLE_STRING, "description": "The file, once the clip is ready."},
            "created_at": DATE, "finished_at": NULLABLE_DATE,
        }, ["id", "kind", "status", "url", "created_at"]),
        "AudioUpload": _obj({"audio": {"type": "string", "format": "binary",
                                       "description": f"WAV, MP3, OGG or FLAC, at most "
                                                      f"{settings.audio_upload_max_bytes} bytes and "
                                                      f"{settings.audio_max_seconds} seconds."},
                             "title": {"type": "string", "maxLength": 200}}, ["audio"]),
        "AudioGenerationRequest": _obj({
            "prompt": {"type": "string", "minLength": 1, "maxLength": settings.gpu_max_prompt_chars},
            "duration": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                         "maximum": min(60, settings.audio_max_seconds), "default": settings.audio_gen_duration},
            "model": {"type": "string", "description": "Model id (default: the first configured model)."},
            "seed": seed, "title": {"type": "string", "maxLength": 200},
            "continue_from": {**NULLABLE_STRING, "description": "Id of my ready clip to continue."},
        }, ["prompt"]),
        "Video": video,
        "VideoProject": _obj({
            "id": {"type": "string", "format": "uuid"}, "kind": {"type": "string", "enum": ["music", "interpolation"]},
            "title": NULLABLE_STRING,
            "status": {"type": "string", "enum": ["draft", "queued", "rendering", "ready", "failed", "cancelled"]},
            "failure_reason": NULLABLE_STRING, "audio_id": NULLABLE_STRING, "start_image_id": NULLABLE_STRING,
            "start_strength": NULLABLE_NUMBER,
            "prompts": {"type": "array", "items": _obj({"at": {"type": "number"}, "prompt": {"type": "string"},
                                                        "seed": {"type": "integer"}}, ["at", "prompt", "seed"])},
            "width": {"type": "integer"}, "height": {"type": "integer"}, "steps": {"type": "integer"},
            "fps": {"type": "integer"}, "guidance": {"type": "number"}, "smooth": {"type": "number"},
            "model": {"type": "string"}, "duration": NULLABLE_NUMBER, "credits_quoted": {"type": "integer"},
            "credits_used": {"type": "integer"}, "progress": progress, "video": {**video, "nullable": True},
            "created_at": DATE, "finished_at": NULLABLE_DATE,
        }, ["id", "kind", "status", "prompts", "width", "height", "steps", "fps", "model", "progress", "video",
            "created_at"]),
        "VideoProjectCreate": _obj({
            "kind": {"type": "string", "enum": ["music", "interpolation"], "default": "music"},
            "audio_id": {"type": "string", "description": "My ready audio clip (music videos)."},
            **project_settings}, ["prompts"]),
        "VideoProjectChanges": _obj(project_settings),
        "Schedule": _obj({"fps": {"type": "integer"}, "frames": {"type": "integer"},
                          "points": {"type": "array", "items": _obj({
                              "frame": {"type": "integer"}, "time": {"type": "number"},
                              "segment": {"type": "integer"}, "t": {"type": "number"},
                              "position": {"type": "number"}}, ["frame", "time", "segment", "t", "position"])}},
                         ["fps", "frames", "points"]),
    }


def media_paths() -> dict:
    """The audio, video-project and video operations."""
    audio_id = _path_param("public_id", "Audio clip id (UUID).")
    project_id = _path_param("public_id", "Video project id (UUID).")
    video_id = _path_param("public_id", "Video id (UUID).")
    project = _json(_ref("VideoProject"))
    return {
        "/audio": {"get": _op("My audio clips, newest first",
                              {"200": _json(_obj({"audio": {"type": "array", "items": _ref("Audio")}}, ["audio"]))},
                              tags=["audio"])},
        "/audio/uploads": {"post": _op("Upload a WAV, MP3, OGG or FLAC (checked by decoding it)",
                                       {"201": _json(_ref("Audio")), **_errors("413", "422")}, tags=["audio"],
                                       body={"required": True, "content": {"multipart/form-data": {
                                           "schema": _ref("AudioUpload")}}})},
        "/audio/generations": {"post": _op("Queue text-to-music, or a continuation of a clip; credits are held now",
                                           {"202": _json(_ref("Audio"), "Queued; poll GET /audio/{public_id}"),
                                            **_errors("400", "402", "404", "409", "415", "422")},
                                           body=_body(_ref("AudioGenerationRequest")), tags=["audio"])},
        "/audio/{public_id}": {
            "get": _op("One of my clips with its state", {"200": _json(_ref("Audio")), **_errors("404")},
                       params=[audio_id], tags=["audio"]),
            "delete": _op("Delete one of my clips (409 while it is being generated)",
                          {**NO_CONTENT, **_errors("404", "409")}, params=[audio_id], tags=["audio"]),
        },
        "/audio/{public_id}/file": {"get": _op("The clip's bytes (Range requests work)",
                                               {**_file("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac",
                                                        partial=True), **_errors("404")},
                                               params=[audio_id], tags=["audio"])},
        "/video-projects": {
            "get": _op("My video projects, newest first",
                       {"200": _json(_obj({"projects": {"type": "array", "items": _ref("VideoProject")}},
                                          ["projects"]))}, tags=["videos"]),
            "post": _op("A draft project: audio_id and prompts (music), or kind interpolation, duration and prompts",
                        {"201": _json(_ref("VideoProject")), **_errors("400", "404", "409", "415", "422")},
                        body=_body(_ref("VideoProjectCreate")), tags=["videos"]),
        },
        "/video-projects/{public_id}": {
            "get": _op("A project with its progress", {"200": project, **_errors("404")}, params=[project_id],
                       tags=["videos"]),
            "patch": _op("Edit timed prompts or settings (409 while queued or rendering)",
                         {"200": project, **_errors("400", "404", "409", "415", "422")}, params=[project_id],
                         body=_body(_ref("VideoProjectChanges")), tags=["videos"]),
            "delete": _op("Delete a project (its render is cancelled first; its video stays)",
                          {**NO_CONTENT, **_errors("404")}, params=[project_id], tags=["videos"]),
        },
        "/video-projects/{public_id}/schedule": {"get": _op(
            "The audio-reactive frame-to-prompt curve, without rendering", {
                "200": _json(_ref("Schedule")), **_errors("404", "409", "422")},
            params=[project_id, _query("smooth", {"type": "number", "minimum": 0, "maximum": 1},
                                       "Preview another smooth value (nothing is saved).")], tags=["videos"])},
        "/video-projects/{public_id}/render": {"post": _op(
            "Hold the quoted credits and queue the render", {
                "202": _json(_ref("VideoProject"), "Queued"), **_errors("400", "402", "404", "409", "415", "422")},
            params=[project_id], tags=["videos"], body=_body(_obj({"batch": {
                "type": "boolean", "default": False, "description": "Wait for the cron batch instead of now."}}),
                required=False))},
        "/video-projects/{public_id}/cancel": {"post": _op(
            "Stop the render: delivered frames are charged, the rest of the hold released",
            {"200": project, **_errors("404", "409")}, params=[project_id], tags=["videos"])},
        "/videos": {"get": _op("My rendered videos, newest first",
                               {"200": _json(_obj({"videos": {"type": "array", "items": _ref("Video")}},
                                                  ["videos"]))}, tags=["videos"])},
        "/videos/{public_id}": {
            "get": _op("One of my videos", {"200": _json(_ref("Video")), **_errors("404")}, params=[video_id],
                       tags=["videos"]),
            "delete": _op("Delete one of my videos with its files", {**NO_CONTENT, **_errors("404")},
                          params=[video_id], tags=["videos"]),
        },
        "/videos/{public_id}/file": {"get": _op(
            "The MP4 (Range requests work)", {**_file("video/mp4", partial=True), **_errors("404")},
            params=[video_id, _query("download", {"type": "string", "enum": ["1"]},
                                     "1: sent as an attachment to save.")], tags=["videos"])},
        "/videos/{public_id}/poster": {"get": _op("The poster frame", {**_file("image/png"), **_errors("404")},
                                                  params=[video_id], tags=["videos"])},
    }

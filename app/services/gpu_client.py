"""The web process's client of the GPU proxy: signed JSON requests, errors mapped to ApiError. No torch."""
from __future__ import annotations

import json
from typing import Any

import requests

from app.errors import ApiError
from app.gpu_signing import sign

TASKS = ("txt2img", "img2img", "inpaint", "instruct", "upscale", "interpolate")


class GpuClient:
    """Calls proxy.py (or one GPU host) with signed requests."""

    def __init__(self, base_url: str, secret: str, timeout_s: float = 300, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    def request(self, method: str, path: str, payload: dict | None = None, request_id: str | None = None) -> dict:
        """Send one signed request and return its JSON; ApiError with the upstream status otherwise."""
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = {**sign(self.secret, method, path, body), "Content-Type": "application/json"}
        if request_id:
            headers["X-Request-Id"] = request_id  # the proxy and the GPU host log it with their lines
        try:
            response = self.session.request(method, self.base_url + path, data=body, headers=headers,
                                            timeout=(5, self.timeout_s))
        except requests.Timeout as exc:
            raise ApiError(504, "the GPU pool did not answer in time; nothing was charged") from exc
        except requests.ConnectionError as exc:
            raise ApiError(503, "the GPU pool is unreachable; try again shortly", code="gpu_unavailable",
                           headers={"Retry-After": "5"}) from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            status = response.status_code if response.status_code in (422, 503, 504) else 502
            headers = {"Retry-After": response.headers["Retry-After"]} if "Retry-After" in response.headers else None
            raise ApiError(status, error.get("message") or f"the GPU pool answered {response.status_code}",
                           code=error.get("code"), field=error.get("field"), headers=headers)
        return data

    def generate(self, task: str, params: dict[str, Any], request_id: str | None = None) -> dict:
        """Run a task (txt2img, img2img, ...) and return {"images": [{"seed", "png_base64"}], ...}."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        return self.request("POST", f"/gpu/v1/{task}", params, request_id=request_id)

    def health(self) -> dict:
        """The health report of what base_url points at (a GPU host)."""
        return self.request("GET", "/gpu/v1/health")

    def models(self) -> dict:
        """The models a GPU host serves."""
        return self.request("GET", "/gpu/v1/models")


def client_from_settings(settings) -> GpuClient:
    """A client of the configured proxy."""
    return GpuClient(settings.proxy_url, settings.gpu_shared_secret, settings.gpu_request_timeout_seconds)

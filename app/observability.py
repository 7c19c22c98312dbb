"""Request ids, JSON log lines and Prometheus metrics, the same on every role."""
from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REQUEST_ID_HEADER = "X-Request-Id"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _current_request_id() -> str | None:
    try:
        return g.get("request_id")
    except RuntimeError:  # outside a request
        return None


def configure_logging(json_lines: bool) -> None:
    """Send the root logger to stderr, as JSON lines when asked."""
    root = logging.getLogger()
    if any(getattr(h, "_atelier", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._atelier = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class Metrics:
    """The metrics of one app, in a registry of its own so several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("atelier_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("atelier_http_request_seconds", "HTTP request latency by route",
                                 ["method", "route"], registry=self.registry)
        self.generations = Counter("atelier_generations_total", "Image generations by model, operation and outcome",
                                   ["model", "operation", "outcome"], registry=self.registry)
        self.credits_spent = Counter("atelier_credits_spent_total", "Credits captured for delivered work",
                                     ["kind"], registry=self.registry)


def init_app(app: Flask) -> None:
    """Attach request ids, request metrics and the /metrics endpoint."""
    configure_logging(app.config["ATELIER"].log_json)
    metrics = Metrics()
    app.extensions["metrics"] = metrics

    @app.before_request
    def _start_request() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        started = g.get("request_started")
        if started is not None:
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        if g.get("request_id"):
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

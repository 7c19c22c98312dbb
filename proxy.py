"""The GPU proxy (`gunicorn proxy:app`): spreads signed generation requests across healthy GPU hosts.

Hosts come from config (gpu_hosts) and the api_hosts table (re-read periodically). Requests go round-robin to
healthy hosts, preferring hosts whose health report says they already hold the requested model. A host that
refuses connections, drops them or answers 5xx is ejected with a doubling back-off; a request that never got
an answer (or got 503) is retried on another host, one host at a time. No torch here.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus

import urllib3
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.config import Settings, load_settings
from app.gpu_signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

log = logging.getLogger("atelier.proxy")
MAX_BACKOFF_S = 60.0
# Errors meaning the host never produced an answer: safe to try the next host (generation has no side effects).
UNANSWERED = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
              urllib3.exceptions.ProtocolError, urllib3.exceptions.ProxyError, ConnectionError)
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "X-Request-Id")


@dataclass
class Host:
    """One GPU host as the proxy sees it."""

    url: str
    name: str | None = None
    healthy: bool = False
    checked: bool = False
    loaded_models: frozenset = frozenset()
    served_models: frozenset = frozenset()
    queue_depth: int = 0
    failures: int = 0
    ejected_until: float = 0.0
    last_error: str | None = None
    sources: set = field(default_factory=set)

    def available(self, now: float) -> bool:
        """Healthy by the last check and not in a back-off."""
        return self.healthy and now >= self.ejected_until


class ProxyMetrics:
    """Per-host requests, errors and latency, and proxy-level outcomes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("atelier_proxy_host_requests_total", "Requests sent to each host", ["host"],
                                registry=self.registry)
        self.errors = Counter("atelier_proxy_host_errors_total", "Failed requests per host and kind",
                              ["host", "kind"], registry=self.registry)
        self.latency = Histogram("atelier_proxy_host_latency_seconds", "Host response time", ["host"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.healthy = Gauge("atelier_proxy_host_healthy", "1 when the host is available", ["host"],
                             registry=self.registry)
        self.outcomes = Counter("atelier_proxy_responses_total", "Proxy responses by status", ["status"],
                                registry=self.registry)


class HostPool:
    """The hosts, their health, and which one gets the next request."""

    def __init__(self, settings: Settings, metrics: ProxyMetrics):
        self.settings = settings
        self.metrics = metrics
        self.hosts: dict[str, Host] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._http = urllib3.PoolManager(num_pools=64, maxsize=64, block=False, retries=False)
        self._started = False
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_refresh = 0.0
        self._engine = None

    # hosts -------------------------------------------------------------------------------------------------
    def refresh_hosts(self) -> None:
        """Re-read the host list from config and the api_hosts table (when a database is reachable)."""
        found: dict[str, tuple[str | None, str]] = {}
        for url in self.settings.gpu_hosts:
            found[url.rstrip("/")] = (None, "config")
        for url, name in self._hosts_from_database():
            found[url.rstrip("/")] = (name, "db")
        with self._lock:
            for url in list(self.hosts):
                if url not in found:
                    del self.hosts[url]
            for url, (name, source) in found.items():
                host = self.hosts.setdefault(url, Host(url, name))
                host.name = name or host.name
                host.sources = {source}
        self._last_refresh = time.monotonic()

    def _hosts_from_database(self) -> list[tuple[str, str | None]]:
        url = self.settings.database_url
        if not url:
            return []
        if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
            return []  # never create an empty SQLite file just by looking
        try:
            from sqlalchemy import create_engine, select

            from app.models.host import ApiHost

            if self._engine is None:
                self._engine = create_engine(url, pool_pre_ping=True)
            with self._engine.connect() as connection:
                rows = connection.execute(select(ApiHost.url, ApiHost.name).where(ApiHost.enabled.is_(True)))
                return [(row.url, row.name) for row in rows]
        except Exception as exc:  # the config hosts still work without the database
            log.warning("cannot read api_hosts: %s", exc)
            return []

    # health ------------------------------------------------------------------------------------------------
    def check(self, host: Host) -> None:
        """Ask one host for its health report and record what it holds."""
        path = "/gpu/v1/health"
        try:
            response = self._http.request("GET", host.url + path, headers=sign(self.settings.gpu_shared_secret,
                                                                                "GET", path),
                                          timeout=urllib3.Timeout(connect=1.0, read=3.0))
            if response.status != 200:
                raise RuntimeError(f"health answered {response.status}")
            report = json.loads(response.data)
            host.loaded_models = frozenset(report.get("loaded_models", []))
            host.served_models = frozenset(report.get("models", []))
            host.queue_depth = int(report.get("queue_depth", 0))
            host.healthy = bool(report.get("ready", True))
            host.last_error = None if host.healthy else "not ready"
        except Exception as exc:
            host.healthy = False
            host.last_error = f"health check: {exc.__class__.__name__}: {exc}"[:300]
        host.checked = True
        self.metrics.healthy.labels(host.url).set(1 if host.available(time.monotonic()) else 0)

    def check_all(self) -> None:
        """Check every host in parallel threads (a slow host does not delay the others)."""
        threads = [threading.Thread(target=self.check, args=(h,), daemon=True) for h in list(self.hosts.values())]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)

    def ensure_started(self) -> None:
        """On first use: read the hosts, check them once, then keep checking in a background thread."""
        if self._started:
            return
        with self._start_lock:
            if self._started:
                return
            self.refresh_hosts()
            self.check_all()
            threading.Thread(target=self._background, name="proxy-health", daemon=True).start()
            self._started = True

    def _background(self) -> None:
        while not self._stop.wait(self.settings.proxy_health_interval_seconds):
            try:
                if time.monotonic() - self._last_refresh >= self.settings.proxy_hosts_refresh_seconds:
                    self.refresh_hosts()
                self.check_all()
            except Exception:  # keep checking whatever happens
                log.exception("health round failed")

    # routing -----------------------------------------------------------------------------------------------
    def choose(self, model: str | None, tried: set[str]) -> Host | None:
        """Round-robin over available hosts that serve the model, preferring those that already hold it."""
        now = time.monotonic()
        hosts = list(self.hosts.values())
        candidates = [h for h in hosts if h.url not in tried and h.available(now)]
        if model and any(model in h.served_models for h in hosts):
            # Hosts that do not serve the model would only answer 422; when no host serves it, any one says so.
            candidates = [h for h in candidates if model in h.served_models]
            candidates = [h for h in candidates if model in h.loaded_models] or candidates
        if not candidates:
            return None
        return candidates[next(self._counter) % len(candidates)]

    def eject(self, host: Host, reason: str, seconds: float | None = None) -> None:
        """Take a host out of rotation for a back-off that doubles with each consecutive failure."""
        with self._lock:
            host.failures += 1
            backoff = seconds or min(self.settings.proxy_eject_seconds * 2 ** (host.failures - 1), MAX_BACKOFF_S)
            host.ejected_until = time.monotonic() + backoff
            host.last_error = reason[:300]
        self.metrics.healthy.labels(host.url).set(0)
        log.warning("ejected %s for %.1f s: %s", host.url, backoff, reason)

    def succeeded(self, host: Host) -> None:
        """A good answer resets the host's failure count."""
        if host.failures:
            host.failures = 0

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str], host: Host):
        """Send one request to one host; raises what urllib3 raises."""
        return self._http.request(method, host.url + path, body=body, headers=headers, preload_content=True,
                                  timeout=urllib3.Timeout(connect=2.0, read=self.settings.gpu_request_timeout_seconds))

    def snapshot(self) -> list[dict]:
        """The pool as JSON."""
        now = time.monotonic()
        return [{"url": h.url, "name": h.name, "available": h.available(now), "healthy": h.healthy,
                 "loaded_models": sorted(h.loaded_models), "served_models": sorted(h.served_models),
                 "queue_depth": h.queue_depth, "failures": h.failures,
                 "ejected_for_s": round(max(0.0, h.ejected_until - now), 1), "last_error": h.last_error}
                for h in list(self.hosts.values())]


class ProxyApp:
    """The WSGI application."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = ProxyMetrics()
        self.pool = HostPool(settings, self.metrics)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/healthz":
                self.pool.ensure_started()
                status, body, headers = 200, self._json({"status": "ok", "role": "proxy",
                                                          "hosts": self.pool.snapshot()}), {}
            elif path == "/metrics":
                status, body = 200, generate_latest(self.metrics.registry)
                headers = {"Content-Type": CONTENT_TYPE_LATEST}
            elif path.startswith("/gpu/v1/"):
                status, body, headers = self._proxy(environ, method, path)
            else:
                status, body, headers = self._error(404, "not_found", f"no route {path}")
        except Exception:  # one JSON shape even for our own bugs
            log.exception("proxy error on %s %s", method, path)
            status, body, headers = self._error(500, "internal_error", "the proxy failed")
        self.metrics.outcomes.labels(str(status)).inc()
        headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(body))
        start_response(f"{status} {_reason(status)}", list(headers.items()))
        return [body]

    @staticmethod
    def _json(payload: dict) -> bytes:
        return json.dumps(payload).encode()

    def _error(self, status: int, code: str, message: str, headers: dict | None = None):
        return status, self._json({"error": {"code": code, "message": message}}), dict(headers or {})

    def _proxy(self, environ, method: str, path: str):
        body = _read_body(environ)
        signed = {TIMESTAMP_HEADER: environ.get("HTTP_X_ATELIER_TIMESTAMP", ""),
                  SIGNATURE_HEADER: environ.get("HTTP_X_ATELIER_SIGNATURE", "")}
        try:
            verify(self.settings.gpu_shared_secret, method, path, body, signed)
        except SignatureError as exc:
            return self._error(401, "bad_signature", str(exc))
        self.pool.ensure_started()
        model = _model_of(body)
        headers = {**signed, "Content-Type": environ.get("CONTENT_TYPE") or "application/json"}
        if environ.get("HTTP_X_REQUEST_ID"):
            headers["X-Request-Id"] = environ["HTTP_X_REQUEST_ID"]
        tried: set[str] = set()
        last_busy = None
        while True:
            host = self.pool.choose(model, tried)
            if host is None:
                if last_busy is not None:
                    return last_busy
                retry = str(max(1, self.settings.proxy_health_interval_seconds))
                return self._error(503, "no_gpu_host", "no healthy GPU host is available; try again shortly",
                                   {"Retry-After": retry})
            tried.add(host.url)
            self.metrics.requests.labels(host.url).inc()
            started = time.perf_counter()
            try:
                response = self.pool.forward(method, path, body, headers, host)
            except urllib3.exceptions.ReadTimeoutError:
                self.metrics.errors.labels(host.url, "timeout").inc()
                return self._error(504, "gateway_timeout", f"the GPU host did not answer within "
                                                           f"{self.settings.gpu_request_timeout_seconds} s")
            except UNANSWERED as exc:
                self.metrics.errors.labels(host.url, "connection").inc()
                self.pool.eject(host, f"{exc.__class__.__name__}: {exc}")
                continue
            self.metrics.latency.labels(host.url).observe(time.perf_counter() - started)
            out_headers = {name: response.headers[name] for name in FORWARDED_RESPONSE_HEADERS
                           if name in response.headers}
            if response.status == 503:
                self.metrics.errors.labels(host.url, "busy").inc()
                retry_after = _seconds(response.headers.get("Retry-After"))
                self.pool.eject(host, "answered 503", seconds=retry_after or self.settings.proxy_eject_seconds)
                last_busy = (503, response.data, out_headers)
                continue
            if response.status >= 500:
                self.metrics.errors.labels(host.url, "5xx").inc()
                self.pool.eject(host, f"answered {response.status}")
            else:
                self.pool.succeeded(host)
            return response.status, response.data, out_headers


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _model_of(body: bytes) -> str | None:
    if not body:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    model = payload.get("model") if isinstance(payload, dict) else None
    return model if isinstance(model, str) else None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.5, float(value)) if value else None
    except ValueError:
        return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def create_proxy(settings: Settings | None = None) -> ProxyApp:
    """Build the proxy from config (ATELIER_* variables and config.json, like every other process)."""
    from app.observability import configure_logging

    settings = settings or load_settings()
    configure_logging(settings.log_json)
    return ProxyApp(settings)


app = create_proxy()

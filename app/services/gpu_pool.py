"""The GPU pool as data: hosts the proxy may use (api_hosts) and models hosts may serve (models). No torch."""
from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models.host import ApiHost, ModelEntry
from app.services.gpu_client import GpuClient


HEALTH_TIMEOUT_S = 3

def _normalize_url(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ApiError(422, f"not an http(s) URL: {url!r}", field="url")
    return url.strip().rstrip("/")


def add_host(url: str, name: str | None = None) -> ApiHost:
    """Add a GPU host; 409 when the URL is already listed."""
    url = _normalize_url(url)
    if db.session.scalar(select(ApiHost).where(ApiHost.url == url)):
        raise ApiError(409, f"host {url} is already listed")
    host = ApiHost(url=url, name=name, enabled=True)
    db.session.add(host)
    db.session.commit()
    return host


def list_hosts() -> list[ApiHost]:
    """Every listed host, oldest first."""
    return list(db.session.scalars(select(ApiHost).order_by(ApiHost.id)))


def _host(url: str) -> ApiHost:
    host = db.session.scalar(select(ApiHost).where(ApiHost.url == url.strip().rstrip("/")))
    if host is None:
        raise ApiError(404, f"no host {url} is listed")
    return host


def set_host_enabled(url: str, enabled: bool) -> ApiHost:
    """Put a host in or out of the proxy's rotation (the proxy notices at its next refresh)."""
    host = _host(url)
    host.enabled = enabled
    db.session.commit()
    return host


def remove_host(url: str) -> None:
    """Forget a host."""
    db.session.delete(_host(url))
    db.session.commit()


def add_model(model_id: str, display_name: str | None = None, kind: str = "image", preload: bool = False,
              price_multiplier: float = 1.0) -> ModelEntry:
    """Register a model id (tiny, a Hugging Face id, or a local path) the pool may serve."""
    model_id = model_id.strip()
    if not model_id:
        raise ApiError(422, "model id is required", field="model_id")
    if kind not in ("image", "audio"):
        raise ApiError(422, "kind must be image or audio", field="kind")
    if price_multiplier <= 0:
        raise ApiError(422, "price multiplier must be positive", field="price_multiplier")
    existing = db.session.scalar(select(ModelEntry).where(ModelEntry.model_id == model_id))
    if existing is not None:
        raise ApiError(409, f"model {model_id} is already registered")
    entry = ModelEntry(model_id=model_id, display_name=display_name, kind=kind, enabled=True, preload=preload,
                       price_multiplier=price_multiplier)
    db.session.add(entry)
    db.session.commit()
    return entry


def list_models(enabled_only: bool = False) -> list[ModelEntry]:
    """Registered models, oldest first."""
    query = select(ModelEntry).order_by(ModelEntry.id)
    if enabled_only:
        query = query.where(ModelEntry.enabled.is_(True))
    return list(db.session.scalars(query))


def set_model_enabled(model_id: str, enabled: bool) -> ModelEntry:
    """Offer a model to users, or stop offering it."""
    entry = db.session.scalar(select(ModelEntry).where(ModelEntry.model_id == model_id))
    if entry is None:
        raise ApiError(404, f"no model {model_id} is registered")
    entry.enabled = enabled
    db.session.commit()
    return entry


def fetch_health(url: str, secret: str | None, timeout_s: float = HEALTH_TIMEOUT_S) -> tuple[dict | None, str | None]:
    """Ask one GPU host for its signed /gpu/v1/health: (report, None) when up, (None, why) when not."""
    try:
        return GpuClient(url, secret or "", timeout_s=timeout_s).health(), None
    except ApiError as error:
        # The client words a refused connection for users of the whole pool; here it is about one host.
        if error.code == "gpu_unavailable":
            return None, "unreachable: nothing answered at this address"
        return None, error.message

"""The GPU role: pipelines, batching and the internal GPU API. Imported only when the role includes gpu."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the GPU blueprint and its readiness check (filled in by the GPU issue)."""

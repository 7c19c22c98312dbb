"""One typed configuration: defaults in code, then config.json, then ATELIER_* environment variables."""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from limits import parse as parse_limit

ENV_PREFIX = "ATELIER_"
ROLES = ("cpu", "gpu", "all")
ENVIRONMENTS = ("development", "testing", "production")


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot run the platform."""


@dataclass
class Settings:
    """Every key the platform reads; config.example.json documents each one."""

    # Process
    environment: str = "development"
    server_type: str = "cpu"
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:5000"
    instance_dir: str = "instance"
    log_json: bool = True

    # Data
    database_url: str = "sqlite:///instance/atelier.db"
    redis_url: str | None = None
    redis_key_prefix: str = "atelier"

    # Accounts
    email_token_ttl_hours: int = 24
    password_reset_ttl_minutes: int = 60
    login_rate_limit_per_account: str = "10 per 5 minutes"
    login_rate_limit_per_ip: str = "30 per 5 minutes"
    register_rate_limit_per_ip: str = "20 per hour"

    # Mail
    sendgrid_api_key: str | None = None
    sendgrid_host: str = "https://api.sendgrid.com"
    mail_from: str = "Atelier <no-reply@atelier.local>"
    mail_outbox_dir: str = "instance/outbox"

    # Storage
    storage_backend: str = "local"
    storage_local_dir: str = "instance/media"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_public_base_url: str | None = None
    media_url_ttl_seconds: int = 900
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_max_pixels: int = 40_000_000

    # Credits
    default_credit_expiration: int = 30
    signup_bonus_credits: int = 0
    hold_timeout_minutes: int = 30
    price_image_credits: int = 4
    price_per_audio_second: int = 1
    price_per_video_second: int = 4

    # Models and GPU
    huggingface_token: str | None = None
    gpu_shared_secret: str | None = None
    proxy_url: str = "http://127.0.0.1:5100"
    gpu_hosts: list[str] = field(default_factory=list)
    gpu_models: list[str] = field(default_factory=lambda: ["tiny"])
    gpu_preload_models: list[str] = field(default_factory=lambda: ["tiny"])
    gpu_device: str = "cpu"
    gpu_dtype: str = "float32"
    gpu_max_batch_size: int = 8
    gpu_batch_wait_ms: int = 10
    gpu_queue_limit: int = 64
    gpu_memory_budget_mb: int = 0
    gpu_idle_ttl_seconds: int = 0
    gpu_max_pixels: int = 1048576
    gpu_max_steps: int = 150
    gpu_max_guidance: int = 30
    gpu_max_images: int = 8
    gpu_max_prompt_chars: int = 2000
    gpu_max_frames: int = 64
    gpu_torch_compile: bool = False
    gpu_request_timeout_seconds: int = 300
    proxy_health_interval_seconds: int = 5
    proxy_hosts_refresh_seconds: int = 30
    proxy_eject_seconds: int = 5
    generation_max_images: int = 4
    job_executor: str = "thread"
    job_workers: int = 2
    webhook_secret: str | None = None
    webhook_allow_private_addresses: bool = False

    # Media jobs
    video_generation_fps: int = 16
    audio_gen_duration: int = 10
    video_generation_discord_webhook: str | None = None
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    celery_visibility_timeout_seconds: int = 3600
    celery_task_time_limit_seconds: int = 1800
    celery_task_soft_time_limit_seconds: int = 1700
    celery_max_redeliveries: int = 3
    celery_gpu_retries: int = 8
    celery_gpu_retry_backoff_max_seconds: int = 120
    video_chunk_frames: int = 8
    video_render_concurrency: int = 4
    video_render_slice_seconds: int = 600
    video_render_lease_seconds: int = 60
    video_max_seconds: int = 600
    audio_upload_max_bytes: int = 50 * 1024 * 1024
    audio_max_seconds: int = 600

    @property
    def is_production(self) -> bool:
        """True when running for real users (secure cookies, secrets required)."""
        return self.environment == "production"

    @property
    def serves_cpu(self) -> bool:
        """True when this process serves accounts, credits, media and pages."""
        return self.server_type in ("cpu", "all")

    @property
    def serves_gpu(self) -> bool:
        """True when this process loads pipelines and serves the GPU API."""
        return self.server_type in ("gpu", "all")

    def validate(self) -> None:
        """Fail loudly on a configuration that cannot run."""
        if self.server_type not in ROLES:
            raise ConfigError(f"server_type must be one of {', '.join(ROLES)}, not {self.server_type!r}")
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"environment must be one of {', '.join(ENVIRONMENTS)}, not {self.environment!r}")
        if self.job_executor not in ("thread", "celery"):
            raise ConfigError(f"job_executor must be 'thread' or 'celery', not {self.job_executor!r}")
        if self.storage_backend not in ("local", "s3"):
            raise ConfigError(f"storage_backend must be 'local' or 's3', not {self.storage_backend!r}")
        if not (0 < self.celery_task_soft_time_limit_seconds < self.celery_task_time_limit_seconds
                < self.celery_visibility_timeout_seconds):
            raise ConfigError("celery time limits must satisfy 0 < soft < hard < celery_visibility_timeout_seconds")
        try:
            parse_limit(self.register_rate_limit_per_ip)
        except ValueError as exc:
            raise ConfigError(f"register_rate_limit_per_ip: {exc}") from None
        if not 1 <= self.video_chunk_frames <= self.gpu_max_frames:
            raise ConfigError("video_chunk_frames must be between 1 and gpu_max_frames")
        if self.is_production:
            missing = [name for name in ("secret_key", "gpu_shared_secret") if not getattr(self, name)]
            if missing:
                raise ConfigError(
                    "production configuration is missing "
                    + ", ".join(missing)
                    + f": set it in config.json or as {ENV_PREFIX}{missing[0].upper()}"
                )
            if self.storage_backend == "s3" and not self.s3_bucket:
                raise ConfigError("storage_backend is 's3' but s3_bucket is not set")


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"not a boolean: {raw!r}")


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    """Parse a value from JSON or the environment strictly into the field's type."""
    kind_text = str(kind)
    if raw is None:
        return None
    try:
        if kind_text.startswith("bool"):
            return raw if isinstance(raw, bool) else _parse_bool(str(raw))
        if kind_text.startswith("int"):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind_text.startswith("list"):
            if isinstance(raw, list):
                return [str(item) for item in raw]
            text = str(raw).strip()
            if text.startswith("["):
                return [str(item) for item in json.loads(text)]
            return [part.strip() for part in text.split(",") if part.strip()]
        return str(raw)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config key {name}: cannot read {raw!r} as {kind_text}") from exc


def normalize_database_url(url: str) -> str:
    """Use psycopg2 for PostgreSQL (SQLAlchemy 2.1 would pick psycopg 3) and accept Heroku-style postgres://."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _development_secret(instance_dir: str) -> str:
    """A key kept in the instance folder so local sessions survive a restart; production must set one."""
    path = os.path.join(instance_dir, "dev_secret_key")
    os.makedirs(instance_dir, exist_ok=True)
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, config.json, ATELIER_* variables, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Settings)}

    path = environ.get(f"{ENV_PREFIX}CONFIG") or ("config.json" if os.path.exists("config.json") else None)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                from_file = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for key, raw in from_file.items():
            if key.startswith("_"):  # "_comment" keys document the example file
                continue
            if key not in known:
                raise ConfigError(f"unknown config key {key!r} in {path}")
            values[key] = _coerce(key, known[key], raw)

    for key, kind in known.items():
        env_name = f"{ENV_PREFIX}{key.upper()}"
        if env_name in environ:
            values[key] = _coerce(key, kind, environ[env_name])

    for key, raw in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"unknown config key {key!r}")
        values[key] = _coerce(key, known[key], raw)

    settings = Settings(**values)
    settings.database_url = normalize_database_url(settings.database_url)
    if not settings.secret_key and settings.environment == "development":
        settings.secret_key = _development_secret(settings.instance_dir)
    elif not settings.secret_key and settings.environment == "testing":
        settings.secret_key = secrets.token_hex(32)
    if not settings.gpu_shared_secret and not settings.is_production:
        settings.gpu_shared_secret = "dev-gpu-secret"
    settings.validate()
    return settings

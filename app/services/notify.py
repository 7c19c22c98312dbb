"""Telling people a long job ended: an email, and Discord-style webhook posts (the operator's and the user's own)."""
from __future__ import annotations

import logging

import requests
from flask import current_app

from app.services import mailer, outbound

log = logging.getLogger(__name__)


def _post_webhook(url: str, payload: dict, trusted: bool) -> None:
    try:
        if trusted:  # the operator's own config, not a user's URL
            response = requests.post(url, json=payload, timeout=10)
        else:
            response = outbound.post(url, json=payload, timeout=10)
        if response.status_code >= 300:
            log.warning("webhook %s answered %s", url, response.status_code)
    except outbound.UnsafeURL as exc:
        log.warning("webhook %s refused: %s", url, exc)
    except requests.RequestException as exc:  # a dead webhook must not fail the job that already finished
        log.warning("webhook %s failed: %s", url, exc)


def job_finished(user, kind: str, title: str, ok: bool, link: str, reason: str | None = None) -> None:
    """Email the owner and post to the configured webhooks that a video or audio is ready or failed."""
    settings = current_app.config["ATELIER"]
    what = f"Your {kind} “{title}”"
    if ok:
        subject, line = f"{what} is ready", f"{what} is ready: {link}"
    else:
        subject, line = f"{what} failed", f"{what} failed: {reason or 'unknown error'}. No credits were kept for it."
    try:
        mailer.send(mailer.Message(to=user.email, subject=subject, text=line + "\n\n— Atelier\n"))
    except Exception:  # mail trouble is logged; the job's state is already saved
        log.exception("could not email %s about %s", user.email, kind)
    payload = {"content": line, "username": "Atelier",
               "embeds": [{"title": subject, "url": link if ok else None,
                           "description": reason if not ok else None}]}
    if settings.video_generation_discord_webhook:
        _post_webhook(settings.video_generation_discord_webhook, payload, trusted=True)
    if getattr(user, "notification_webhook_url", None):
        _post_webhook(user.notification_webhook_url, payload, trusted=False)

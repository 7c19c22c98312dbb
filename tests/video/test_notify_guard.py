"""Finished-job notifications: the user's own webhook is held to the SSRF guard, the operator's is trusted."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from app.services import notify


def test_a_users_webhook_on_a_private_address_is_refused_but_discord_and_mail_still_go(app, recorder, outbox,
                                                                                        caplog):
    discord, own = recorder(), recorder()
    settings = app.config["ATELIER"]
    settings.webhook_allow_private_addresses = False
    settings.video_generation_discord_webhook = discord.url + "/discord"
    port = own.url.rsplit(":", 1)[1]
    user = SimpleNamespace(email="owner@example.com", notification_webhook_url=f"http://localhost:{port}/mine")
    caplog.set_level(logging.WARNING, logger="app.services.notify")
    with app.app_context():
        notify.job_finished(user, "video", "Dawn", True, "http://atelier.test/videos/1")
    assert [hook["path"] for hook in discord.received] == ["/discord"]
    assert own.received == []
    assert any("forbidden address" in record.getMessage() for record in caplog.records)
    assert outbox(to="owner@example.com")[0]["subject"] == "Your video “Dawn” is ready"

    settings.webhook_allow_private_addresses = True  # a single-machine setup may allow it
    with app.app_context():
        notify.job_finished(user, "video", "Dawn", True, "http://atelier.test/videos/1")
    assert [hook["path"] for hook in own.received] == ["/mine"]
    assert own.received[0]["json"]["content"].startswith("Your video “Dawn” is ready")

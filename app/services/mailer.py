"""Email: SendGrid when an API key is configured, otherwise an outbox folder a person can read locally."""
from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import asdict, dataclass

from flask import Flask, current_app

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    """The mail provider refused or could not be reached."""


@dataclass
class Message:
    """One email, plain text with an optional HTML body."""

    to: str
    subject: str
    text: str
    html: str | None = None


class OutboxMailer:
    """Writes each message as a JSON file in a folder and logs its links, for local use."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def send(self, message: Message, sender: str) -> None:
        """Write the message to the outbox and log any link in it so a person can click it."""
        os.makedirs(self.folder, exist_ok=True)
        name = f"{message.to.replace('@', '_at_')}-{uuid.uuid4().hex[:8]}.json"
        path = os.path.join(self.folder, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"from": sender, **asdict(message)}, handle, indent=2)
        links = re.findall(r"https?://\S+", message.text)
        log.info("mail to %s: %s %s (outbox %s)", message.to, message.subject, " ".join(links), path)


class SendGridMailer:
    """Sends through the official SendGrid client; `host` lets tests point it at a local server."""

    def __init__(self, api_key: str, host: str) -> None:
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(api_key=api_key, host=host)

    def send(self, message: Message, sender: str) -> None:
        """Send one message; raise MailError when SendGrid does not accept it."""
        from python_http_client.exceptions import HTTPError
        from sendgrid.helpers.mail import Mail

        mail = Mail(from_email=sender, to_emails=message.to, subject=message.subject,
                    plain_text_content=message.text, html_content=message.html)
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            raise MailError(f"SendGrid refused the message: {exc.status_code}") from exc
        except OSError as exc:
            raise MailError(f"SendGrid could not be reached: {exc}") from exc
        if response.status_code >= 300:
            raise MailError(f"SendGrid answered {response.status_code}")


def init_app(app: Flask) -> None:
    """Choose the mailer from config."""
    settings = app.config["ATELIER"]
    if settings.sendgrid_api_key:
        app.extensions["mailer"] = SendGridMailer(settings.sendgrid_api_key, settings.sendgrid_host)
    else:
        app.extensions["mailer"] = OutboxMailer(os.path.abspath(settings.mail_outbox_dir))


def send(message: Message) -> None:
    """Send a message with the configured mailer."""
    current_app.extensions["mailer"].send(message, current_app.config["ATELIER"].mail_from)

"""The real SendGrid client, pointed at a local HTTP server that records what it is sent."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.accounts.conftest import PASSWORD


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sendgrid_server():
    """A local stand-in for api.sendgrid.com on a free port; yields (base url, recorded requests)."""
    recorded: list[dict] = []
    handler = type("Handler", (_Recorder,), {"requests": recorded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    server.shutdown()
    server.server_close()


@pytest.fixture
def sendgrid_settings(settings_overrides, sendgrid_server):
    """Point the app (built after this fixture) at the recorder with an API key set."""
    settings_overrides.update(sendgrid_api_key="SG.test-key", sendgrid_host=sendgrid_server[0])
    return sendgrid_server[1]


def test_verification_mail_goes_through_the_sendgrid_client(sendgrid_settings, client, outbox):
    response = client.post("/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 201
    assert outbox() == []  # nothing went to the local outbox
    assert len(sendgrid_settings) == 1
    request = sendgrid_settings[0]
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key"
    mail = request["json"]
    assert mail["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert mail["subject"] == "Confirm your email address for Atelier"
    text = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
    assert "http://atelier.test/verify?token=" in text

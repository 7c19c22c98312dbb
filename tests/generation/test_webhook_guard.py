"""Job webhooks never reach private, loopback or metadata addresses (unless the operator allows it)."""
from __future__ import annotations

import logging
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import func, select

from app.errors import ApiError
from app.extensions import db
from app.models import GenerationJob
from app.services import outbound
from tests.generation.test_jobs import ASYNC, TINY, Recorder, _final, wait_for, webhook  # noqa: F401

FORBIDDEN = ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://172.16.0.9/hook",
             "http://192.168.1.20/hook", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/hook",
             "http://[::1]/hook", "http://[fe80::1]/hook", "http://[fd00::5]/hook", "http://224.0.0.1/hook",
             "http://240.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "http://100.64.0.1/hook"]


@pytest.fixture
def strict(app):
    """The production default: private addresses refused."""
    app.config["ATELIER"].webhook_allow_private_addresses = False
    return app


@pytest.mark.parametrize("url", FORBIDDEN)
def test_literal_private_addresses_are_refused_at_submit(strict, url):
    with strict.app_context(), pytest.raises(ApiError) as refused:
        outbound.check_url(url, "webhook_url")
    assert refused.value.status == 422 and refused.value.field == "webhook_url"


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/x",
                                 "https://:pw@hooks.example.com/x", "https:///nohost", "http://a b.example/x",
                                 "https://hooks.example.com/" + "x" * 2000, "http://hooks.example.com:99999/"])
def test_malformed_urls_are_refused_at_submit(strict, url):
    with strict.app_context(), pytest.raises(ApiError) as refused:
        outbound.check_url(url, "webhook_url")
    assert refused.value.status == 422 and refused.value.field == "webhook_url"


def test_public_urls_are_accepted_at_submit(strict):
    with strict.app_context():
        for url in ("https://93.184.216.34/hook", "http://[2606:4700::1111]:8443/h?x=1",
                    "https://hooks.example.com/atelier"):
            assert outbound.check_url(url, "webhook_url") == url
        assert outbound.check_url("", "webhook_url") is None
        strict.config["ATELIER"].webhook_allow_private_addresses = True
        assert outbound.check_url("http://127.0.0.1:9/hook", "webhook_url") == "http://127.0.0.1:9/hook"


def test_the_api_answers_422_for_a_private_webhook_and_queues_nothing(strict, client, make_user):
    _, headers, _, _ = make_user(credit=100)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::1]:8000/x", "http://user:pw@example.com/"):
        response = client.post("/api/v1/images/generations", json={**TINY, "webhook_url": url},
                               headers={**headers, **ASYNC})
        assert response.status_code == 422 and response.json["error"]["field"] == "webhook_url", url
    with strict.app_context():
        assert db.session.scalar(select(func.count()).select_from(GenerationJob)) == 0


def test_a_hostname_resolving_to_loopback_is_refused_at_send_and_the_job_still_succeeds(
        strict, client, make_user, webhook, caplog):
    _, headers, _, _ = make_user(credit=100)
    port = webhook.split(":")[2].split("/")[0]
    sneaky = f"http://localhost:{port}/hooks/atelier"  # passes the submit check: not a literal address
    caplog.set_level(logging.WARNING, logger="app.services.jobs")
    response = client.post("/api/v1/images/generations", json={**TINY, "webhook_url": sneaky},
                           headers={**headers, **ASYNC})
    assert response.status_code == 202, response.json
    assert _final(client, headers, response.json["id"])["state"] == "succeeded"
    refused = wait_for(lambda: [r for r in caplog.records if "refused" in r.getMessage()])
    assert "localhost resolves to a forbidden address" in refused[0].getMessage()
    assert Recorder.received == []


def test_send_connects_to_the_checked_address_keeping_the_host_name(app, webhook):
    # With private addresses allowed (as in every test here), delivery to a name goes to the address checked,
    # and the receiver still sees the name it was given; redirects are not followed.
    port = webhook.split(":")[2].split("/")[0]
    with app.app_context():
        response = outbound.post(f"http://localhost:{port}/hooks/atelier?x=1", json={"ok": True})
    assert response.status_code == 204
    assert Recorder.received[0]["path"] == "/hooks/atelier?x=1"
    assert Recorder.received[0]["headers"]["Host"] == f"localhost:{port}"


@pytest.fixture
def https_receiver(tmp_path):
    """An HTTPS webhook receiver on 127.0.0.1 whose certificate names only `localhost`; yields (port, CA path)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(cert)
    server.shutdown()


def test_https_to_the_checked_address_still_verifies_the_certificate_for_the_name(app, https_receiver):
    port, ca = https_receiver
    with app.app_context():
        response = outbound.post(f"https://localhost:{port}/tls", json={"ok": True}, verify=ca)
        assert response.status_code == 204 and Recorder.received[0]["headers"]["Host"] == f"localhost:{port}"
        # The certificate names localhost, not 127.0.0.1: addressed by IP, the same receiver is refused.
        with pytest.raises(requests.exceptions.SSLError):
            outbound.post(f"https://127.0.0.1:{port}/tls", json={"ok": True}, verify=ca)

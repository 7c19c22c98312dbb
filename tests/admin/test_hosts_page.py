"""The GPU hosts page against a real GPU-role host (gunicorn, tiny model) and a URL that refuses connections."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ApiHost
from tests.gpu.conftest import SECRET, free_port, start_gpu_host


@pytest.fixture(scope="module")
def gpu_host(tmp_path_factory):
    """One real GPU host serving tiny, loaded at start."""
    host = start_gpu_host("admin_host", tmp_path_factory)
    try:
        host.wait_ready("/readyz")
        yield host
    finally:
        host.stop()


@pytest.fixture
def settings_overrides(settings_overrides, gpu_host):
    """The web app signs with the host's secret and also knows one host from config."""
    return {**settings_overrides, "gpu_shared_secret": SECRET, "gpu_hosts": [gpu_host.url + "/"]}


def _row(html: str, url: str) -> str:
    return html.split(f'data-url="{url}"')[1].split("</tr>")[0]


def test_hosts_page_shows_live_health_and_down_hosts(admin_client, post_form, gpu_host, app):
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = post_form("/admin/hosts", {"url": refused, "name": "gone"}, page="/admin/hosts", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert f"Added {refused}." in html

    up = _row(html, gpu_host.url)
    assert "from config" in up and ">up</span>" in up
    assert "data-loaded>tiny</td>" in up and "data-queue>0 / 64</td>" in up
    assert "data-in-flight>0<" in up and "data-memory>" in up
    down = _row(html, refused)
    assert ">down</span>" in down and "unreachable" in down and "gone" in down and "listed here" in down


def test_a_host_with_the_wrong_secret_is_shown_down_with_the_reason(admin_client, gpu_host, app):
    app.config["ATELIER"].gpu_shared_secret = "not the host's secret"
    row = _row(admin_client.get("/admin/hosts").get_data(as_text=True), gpu_host.url)
    assert ">down</span>" in row and "signature" in row.lower()


def test_hosts_can_be_disabled_enabled_and_removed(admin_client, post_form, app):
    url = f"http://127.0.0.1:{free_port()}"
    post_form("/admin/hosts", {"url": url + "/"}, page="/admin/hosts")
    html = post_form("/admin/hosts/disable", {"url": url}, page="/admin/hosts",
                     follow_redirects=True).get_data(as_text=True)
    assert f"Disabled {url}." in html and "<strong>disabled</strong>" in _row(html, url)
    with app.app_context():
        assert db.session.scalar(select(ApiHost.enabled).where(ApiHost.url == url)) is False
    post_form("/admin/hosts/enable", {"url": url}, page="/admin/hosts")
    with app.app_context():
        assert db.session.scalar(select(ApiHost.enabled).where(ApiHost.url == url)) is True
    html = post_form("/admin/hosts/remove", {"url": url}, page="/admin/hosts",
                     follow_redirects=True).get_data(as_text=True)
    assert f"Removed {url}." in html and f'data-url="{url}"' not in html


def test_adding_a_bad_or_duplicate_host_shows_the_error_by_the_field(admin_client, post_form):
    bad = post_form("/admin/hosts", {"url": "ftp://example.com"}, page="/admin/hosts")
    assert bad.status_code == 200 and 'id="url-error"' in bad.get_data(as_text=True)
    assert 'value="ftp://example.com"' in bad.get_data(as_text=True)
    url = f"http://127.0.0.1:{free_port()}"
    post_form("/admin/hosts", {"url": url}, page="/admin/hosts")
    again = post_form("/admin/hosts", {"url": url}, page="/admin/hosts")
    assert again.status_code == 200 and "already listed" in again.get_data(as_text=True)

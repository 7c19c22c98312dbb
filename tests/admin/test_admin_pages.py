"""Admin pages through the test client on PostgreSQL: who may see them, users, credits, models, jobs, charts."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import Audio, GenerationJob, Image, Transaction, User, VideoProject, utcnow
from app.services import credits
from tests.admin.conftest import log_in

ADMIN_PAGES = ["/admin", "/admin/users", "/admin/hosts", "/admin/models", "/admin/jobs"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_people_who_are_not_admins_get_a_403_page(client, make_account, path):
    make_account("pat@example.com")
    log_in(client, "pat@example.com")
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "text/html" in response.content_type and "needs an administrator" in response.get_data(as_text=True)


def test_non_admins_cannot_post_admin_forms_either(client, make_account):
    target = make_account("victim@example.com", verified=False)
    make_account("pat@example.com")
    log_in(client, "pat@example.com")
    from tests.admin.conftest import csrf_from

    token = csrf_from(client.get("/account").get_data(as_text=True))
    assert client.post(f"/admin/users/{target}/grant", data={"amount": "500", "csrf_token": token}).status_code == 403
    assert client.post(f"/admin/users/{target}/verify", data={"csrf_token": token}).status_code == 403
    with client.application.app_context():
        assert db.session.scalar(select(func.count(Transaction.id))) == 0
        assert db.session.scalar(select(User.is_verified).where(User.email == "victim@example.com")) is False


def test_admins_see_every_admin_page_and_the_nav_link(admin_client):
    for path in ADMIN_PAGES:
        response = admin_client.get(path)
        assert response.status_code == 200, path
    assert '<a href="/admin"' in admin_client.get("/account").get_data(as_text=True)


def test_the_nav_has_no_admin_link_for_other_people(client, make_account):
    make_account("pat@example.com")
    log_in(client, "pat@example.com")
    assert '<a href="/admin"' not in client.get("/account").get_data(as_text=True)


def test_user_search_is_a_case_insensitive_substring_and_paginates(admin_client, make_account):
    for i in range(30):
        make_account(f"painter{i:02d}@studio.example", verified=i % 2 == 0)
    make_account("sculptor@elsewhere.example")

    html = admin_client.get("/admin/users?q=STUDIO").get_data(as_text=True)
    assert "30 users matching" in html
    assert html.count('data-email="painter') == 25 and "sculptor@" not in html
    assert "Page 1 of 2" in html
    second = admin_client.get("/admin/users?q=studio&page=2").get_data(as_text=True)
    assert second.count('data-email="painter') == 5 and "Page 2 of 2" in second

    # A search for a LIKE wildcard matches the character itself, not everything.
    assert "0 users" in admin_client.get("/admin/users?q=%25").get_data(as_text=True)
    only = admin_client.get("/admin/users?q=sculptor").get_data(as_text=True)
    assert "1 user matching" in only and 'data-email="sculptor@elsewhere.example"' in only


def test_the_user_list_shows_flags_and_balances(admin_client, make_account, app):
    rich = make_account("rich@example.com")
    make_account("new@example.com", verified=False)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "rich@example.com"))
        credits.grant(user_id, 120)
        credits.hold(user_id, 20)
    html = admin_client.get("/admin/users").get_data(as_text=True)
    row = html.split('data-email="rich@example.com"')[1].split("</tr>")[0]
    assert "verified" in row and "100" in row and "(20 held)" in row
    new_row = html.split('data-email="new@example.com"')[1].split("</tr>")[0]
    assert "not verified" in new_row and ">Verify</button>" in new_row
    assert rich in html  # the detail link names the user by public id


def test_the_user_list_costs_the_same_queries_for_3_or_25_users(admin_client, make_account, app):
    def queries_for_listing() -> int:
        statements: list[str] = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert admin_client.get("/admin/users").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    for i in range(2):
        make_account(f"few{i}@example.com")
    few = queries_for_listing()
    for i in range(22):
        make_account(f"many{i}@example.com")
    with app.app_context():
        for i, user_id in enumerate(db.session.scalars(select(User.id).where(User.email.like("many%")))):
            credits.grant(user_id, 10 + i)
            credits.hold(user_id, 1)
    many = queries_for_listing()
    assert few >= 3 and many == few, f"{few} queries for 3 users but {many} for 25"


def test_verify_marks_the_address_verified(admin_client, make_account, post_form, app):
    target = make_account("late@example.com", verified=False)
    response = post_form(f"/admin/users/{target}/verify", {"back": "/admin/users?q=late"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "late@example.com is verified." in html and "1 user matching" in html
    with app.app_context():
        assert db.session.scalar(select(User.is_verified).where(User.email == "late@example.com")) is True


def test_granting_credits_changes_the_balance_and_writes_a_ledger_entry(admin_client, make_account, post_form, app):
    target = make_account("lucky@example.com")
    response = post_form(f"/admin/users/{target}/grant",
                         {"amount": "250", "expires_in_days": "7", "memo": "  contest prize "},
                         page=f"/admin/users/{target}", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Granted 250 credits" in html and '<strong id="user-balance">250</strong>' in html
    with app.app_context():
        entry = db.session.scalars(select(Transaction).join(User).where(User.email == "lucky@example.com")).one()
        assert (entry.kind, entry.amount, entry.remaining, entry.memo) == ("grant", 250, 250, "contest prize")
        assert timedelta(days=6, hours=23) < entry.expires_at - utcnow() <= timedelta(days=7)
    assert "250" in admin_client.get("/admin/users?q=lucky").get_data(as_text=True).split('data-balance>')[1][:10]


@pytest.mark.parametrize("amount, expires, field, message", [
    ("", "", "amount", "Amount is required."),
    ("0", "", "amount", "Amount must be a positive whole number."),
    ("-5", "", "amount", "Amount must be a positive whole number."),
    ("2.5", "", "amount", "Amount must be a positive whole number."),
    ("lots", "", "amount", "Amount must be a positive whole number."),
    ("99999999999", "", "amount", "Amount must be at most 10,000,000."),
    ("10", "0", "expires_in_days", "Expiry must be a positive whole number."),
])
def test_a_bad_grant_is_shown_next_to_its_field_and_writes_nothing(admin_client, make_account, post_form, app,
                                                                   amount, expires, field, message):
    target = make_account("lucky@example.com")
    response = post_form(f"/admin/users/{target}/grant", {"amount": amount, "expires_in_days": expires},
                         page=f"/admin/users/{target}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # re-rendered with the error, as every page form does
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in html
    assert f'value="{amount}"' in html  # what was typed stays in the form
    with app.app_context():
        assert db.session.scalar(select(func.count(Transaction.id))) == 0


def test_unknown_users_are_a_404_page(admin_client, post_form):
    assert admin_client.get("/admin/users/not-a-uuid").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert post_form(f"/admin/users/{missing}/grant", {"amount": "5"}).status_code == 404


def test_models_can_be_added_disabled_and_enabled(admin_client, post_form, app):
    response = post_form("/admin/models", {"model_id": "org/some-model", "display_name": "Some model",
                                           "kind": "image", "price_multiplier": "1.5", "preload": "1"},
                         page="/admin/models", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Added org/some-model." in html and "×1.5" in html and "preload" in html
    html = post_form("/admin/models/disable", {"model_id": "org/some-model"}, page="/admin/models",
                     follow_redirects=True).get_data(as_text=True)
    assert "Disabled org/some-model." in html and ">disabled</span>" in html
    post_form("/admin/models/enable", {"model_id": "org/some-model"}, page="/admin/models")
    from app.models import ModelEntry

    with app.app_context():
        entry = db.session.scalars(select(ModelEntry)).one()
        assert (entry.enabled, entry.preload, entry.price_multiplier) == (True, True, 1.5)

    bad = post_form("/admin/models", {"model_id": "x", "kind": "image", "price_multiplier": "free"}, page="/admin/models")
    assert bad.status_code == 200 and 'id="price_multiplier-error"' in bad.get_data(as_text=True)
    taken = post_form("/admin/models", {"model_id": "org/some-model", "kind": "image"}, page="/admin/models")
    assert taken.status_code == 200 and "already registered" in taken.get_data(as_text=True)


def _seed_activity(app, owner_email: str) -> None:
    now = utcnow()
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == owner_email))
        for days_ago, count in ((0, 3), (2, 1), (40, 5)):
            for _ in range(count):
                db.session.add(Image(user_id=owner.id, kind="txt2img", width=64, height=64,
                                     created_at=now - timedelta(days=days_ago)))
        db.session.add(Image(user_id=owner.id, kind="upload", width=64, height=64, created_at=now))
        db.session.add(Audio(user_id=owner.id, kind="generated", status="processing", prompt="drums", created_at=now))
        db.session.add(VideoProject(user_id=owner.id, title="Night drive", width=64, height=64, steps=2, fps=8,
                                    model_id="tiny", status="rendering", frames_total=40, frames_done=10))
        db.session.add(VideoProject(user_id=owner.id, title="Done one", width=64, height=64, steps=2, fps=8,
                                    model_id="tiny", status="ready", frames_total=4, frames_done=4))
        db.session.add(GenerationJob(user_id=owner.id, operation="txt2img", state="queued", params={}))
        db.session.commit()
        credits.grant(owner.id, 1000)
        credits.spend(owner.id, 30)
        credits.spend(owner.id, 12)
        hold = credits.hold(owner.id, 50)
        credits.capture(hold.id, 8)
        credits.hold(owner.id, 25)


def test_overview_counts_and_charts_per_day(admin_client, make_account, app):
    make_account("maker@example.com")
    make_account("unverified@example.com", verified=False)
    _seed_activity(app, "maker@example.com")
    html = admin_client.get("/admin").get_data(as_text=True)
    assert 'id="count-users">3<' in html and 'id="count-verified">2<' in html
    assert 'id="count-images">10<' in html and 'id="count-holds">1<' in html
    today, two_days_ago = utcnow().date(), (utcnow() - timedelta(days=2)).date()
    generations = html.split('id="generations-table"')[1].split("</table>")[0]
    # Columns: day, images, audio (videos have no rows, so no column); uploads are not generations.
    assert f"<td>{today.isoformat()}</td><td>3</td><td>1</td></tr>" in generations
    assert f"<td>{two_days_ago.isoformat()}</td><td>1</td><td>0</td></tr>" in generations
    assert generations.count("<tr>") == 31  # header + 30 days; the 40-day-old images are outside
    spent = html.split('id="credits-table"')[1].split("</table>")[0]
    assert f"<td>{today.isoformat()}</td><td>50</td>" in spent  # 30 + 12 spent, 8 captured; holds are not spends
    chart = html.split('id="credits-chart"')[1].split("</figure>")[0]
    assert f'data-day="{today.isoformat()}"' in chart and "<rect" in chart and "50 credits" in chart


def test_jobs_page_lists_unfinished_work_with_progress(admin_client, make_account, app):
    make_account("maker@example.com")
    _seed_activity(app, "maker@example.com")
    html = admin_client.get("/admin/jobs").get_data(as_text=True)
    videos = html.split('id="video-jobs"')[1].split("</table>")[0]
    assert "Night drive" in videos and "10 / 40" in videos and "Done one" not in videos
    assert "drums" in html.split('id="audio-jobs"')[1] and "maker@example.com" in videos
    assert "txt2img" in html.split('id="generation-jobs"')[1]


def test_jobs_page_says_when_nothing_runs(admin_client):
    html = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert "No video is queued or rendering." in html and "No audio is queued or processing." in html
    assert "No image generation is queued or running." in html


def test_admin_forms_without_a_csrf_token_are_refused(admin_client, make_account, app):
    target = make_account("lucky@example.com", verified=False)
    assert admin_client.post(f"/admin/users/{target}/grant", data={"amount": "50"}).status_code == 400
    assert admin_client.post(f"/admin/users/{target}/verify").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Transaction.id))) == 0
        assert db.session.scalar(select(User.is_verified).where(User.email == "lucky@example.com")) is False

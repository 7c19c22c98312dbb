"""`flask users ...` through the CLI runner."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.accounts.conftest import PASSWORD


def test_create_admin_verified_then_list(app, runner, login, outbox):
    result = runner.invoke(args=["users", "create", " Root@Example.com", "--admin", "--verified", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert "created root@example.com" in result.output
    assert outbox() == []  # verified up front: no link to send
    listed = runner.invoke(args=["users", "list"])
    assert "root@example.com" in listed.output and "admin,verified" in listed.output
    assert login(email="root@example.com").get_json()["user"]["admin"] is True


def test_create_prompts_for_the_password_and_refuses_weak_ones(app, runner, outbox):
    prompted = runner.invoke(args=["users", "create", "ada@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert len(outbox("ada@example.com")) == 1  # unverified accounts get the link
    weak = runner.invoke(args=["users", "create", "bob@example.com", "--password", "qwerty123"])
    assert weak.exit_code != 0 and "common" in weak.output
    duplicate = runner.invoke(args=["users", "create", "ADA@example.com", "--password", PASSWORD])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_verify_set_password_and_delete(app, runner, client, login):
    runner.invoke(args=["users", "create", "ada@example.com", "--password", PASSWORD])
    assert login().status_code == 200
    verified = runner.invoke(args=["users", "verify", "ADA@example.com"])
    assert verified.exit_code == 0 and client.get("/api/v1/me").get_json()["user"]["verified"] is True

    changed = runner.invoke(args=["users", "set-password", "ada@example.com", "--password", "operator chosen pass"])
    assert changed.exit_code == 0, changed.output
    assert client.get("/api/v1/me").status_code == 401  # their session ended
    assert login(password="operator chosen pass").status_code == 200

    refused = runner.invoke(args=["users", "delete", "ada@example.com"], input="n\n")
    assert refused.exit_code != 0
    deleted = runner.invoke(args=["users", "delete", "ada@example.com", "--yes"])
    assert deleted.exit_code == 0 and "deleted ada@example.com" in deleted.output
    with app.app_context():
        assert db.session.scalar(select(User)) is None


def test_unknown_email_is_a_clear_error(runner):
    for command in (["verify", "x@example.com"], ["delete", "x@example.com", "--yes"],
                    ["set-password", "x@example.com", "--password", PASSWORD]):
        result = runner.invoke(args=["users", *command])
        assert result.exit_code != 0 and "No account for x@example.com" in result.output

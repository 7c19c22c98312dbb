"""`flask users create|list|verify|set-password|delete`: account administration from the shell."""
import click
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.services import accounts


@click.group("users", cls=ServiceGroup)
def users_group():
    """Manage accounts."""


@users_group.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The password (asked for when left out).")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
@click.option("--verified", is_flag=True, help="Mark the email address verified (no email is sent).")
@with_appcontext
def create(email: str, password: str, admin: bool, verified: bool):
    """Create an account for EMAIL."""
    user = accounts.register(email, password, is_admin=admin, verified=verified)
    flags = ", ".join(name for name, on in (("admin", admin), ("verified", user.is_verified)) if on)
    click.echo(f"created {user.email} ({user.public_id}){' [' + flags + ']' if flags else ''}")


@users_group.command("list")
@with_appcontext
def list_users():
    """List accounts, newest first."""
    for user in accounts.list_users():
        flags = ",".join(name for name, on in (("admin", user.is_admin), ("verified", user.is_verified)) if on)
        click.echo(f"{user.email}\t{user.public_id}\t{flags or '-'}\t{user.created_at:%Y-%m-%d %H:%M}")


@users_group.command("verify")
@click.argument("email")
@with_appcontext
def verify(email: str):
    """Mark EMAIL's address verified."""
    user = accounts.verify_user(email)
    click.echo(f"verified {user.email}")


@users_group.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for when left out).")
@with_appcontext
def set_password(email: str, password: str):
    """Set EMAIL's password; their sessions end."""
    user = accounts.set_password(email, password)
    click.echo(f"password set for {user.email}")


@users_group.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def delete(email: str, yes: bool):
    """Delete EMAIL's account and every row that belongs to it."""
    user = accounts.get_user_by_email(email)
    if not yes:
        click.confirm(f"Delete {user.email} and everything it owns?", abort=True)
    address = user.email
    accounts.delete_user(user)
    click.echo(f"deleted {address}")

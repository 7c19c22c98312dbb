"""`flask credits grant|show|expire|sweep-holds|audit`: the credit ledger from the shell (and from cron)."""
import click
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.services import accounts, credits


def _user(email: str):
    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no account with the email {email}")
    return user


@click.group("credits", cls=ServiceGroup)
def credits_group():
    """Grant, inspect, expire and audit credits."""


@credits_group.command("grant")
@click.argument("email")
@click.argument("amount", type=click.IntRange(min=1))
@click.option("--expires-in", "expires_in", type=click.IntRange(min=1), default=None,
              help="Days until these credits expire (default: default_credit_expiration).")
@click.option("--memo", default=None, help="A note shown in the user's ledger.")
@with_appcontext
def grant(email: str, amount: int, expires_in: int | None, memo: str | None):
    """Grant AMOUNT credits to the account EMAIL."""
    user = _user(email)
    entry = credits.grant(user, amount, expires_in_days=expires_in, memo=memo)
    click.echo(f"granted {entry.amount} credits to {user.email}, expiring {entry.expires_at:%Y-%m-%d %H:%M} UTC "
               f"(entry {entry.public_id})")


@credits_group.command("show")
@click.argument("email")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, help="How many ledger entries to list.")
@with_appcontext
def show(email: str, limit: int):
    """Show the balance, expiries and latest ledger entries of EMAIL."""
    user = _user(email)
    summary = credits.balance(user)
    click.echo(f"{user.email}: balance {summary['balance']}, held {summary['held']}")
    for item in summary["expiring"]:
        click.echo(f"  {item['amount']} expire {item['expires_at']:%Y-%m-%d %H:%M} UTC")
    entries, _ = credits.ledger_page(user, limit)
    for entry in entries:
        status = f" [{entry.status}]" if entry.status else ""
        click.echo(f"  {entry.created_at:%Y-%m-%d %H:%M} {entry.kind:<15} {credits.signed_amount(entry):+6d}"
                   f"{status} {entry.memo or ''}".rstrip())


@credits_group.command("expire")
@with_appcontext
def expire():
    """Post an expire entry for what is left on every expired credit entry."""
    click.echo(f"expired {credits.expire_due()} credit entries")


@credits_group.command("sweep-holds")
@click.option("--older-than", "minutes", type=click.IntRange(min=0), default=None,
              help="Minutes a hold without a deadline may stay active (default: hold_timeout_minutes); "
                   "holds with a deadline are released once it has passed.")
@with_appcontext
def sweep_holds(minutes: int | None):
    """Release active holds whose deadline passed (their work stopped renewing them)."""
    click.echo(f"released {credits.sweep_stale_holds(timeout_minutes=minutes)} stale holds")


@credits_group.command("audit")
@with_appcontext
def audit():
    """Recompute every balance from the entries; exit 1 naming the first violated invariant."""
    report = credits.audit()
    if not report.ok:
        click.echo(f"audit failed: {len(report.violations)} violation(s); first: {report.violations[0]}", err=True)
        for violation in report.violations[1:20]:
            click.echo(f"  also: {violation}", err=True)
        raise SystemExit(1)
    click.echo(f"audit ok: {report.entries} entries of {report.users} users")

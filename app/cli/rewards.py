"""`flask rewards run|list|add|disable`: declarative referral reward rules and the catch-up run."""
import click
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.models.referral import REWARD_BENEFICIARIES, REWARD_TRIGGERS
from app.services import rewards


@click.group("rewards", cls=ServiceGroup)
def rewards_group():
    """Referral reward rules."""


@rewards_group.command("run")
@with_appcontext
def run():
    """Pay every reward that is due and was not paid yet (safe to run any time, e.g. from cron)."""
    click.echo(f"paid {rewards.run_all()} rewards")


@rewards_group.command("list")
@with_appcontext
def list_rules():
    """List reward rules."""
    for rule in rewards.list_rules():
        cap = rule.cap_per_referrer if rule.cap_per_referrer is not None else "none"
        expiry = f"{rule.expires_in_days}d" if rule.expires_in_days else "default"
        state = "enabled" if rule.enabled else "disabled"
        click.echo(f"{rule.name}: on {rule.trigger} give {rule.amount} to {rule.beneficiary}, "
                   f"expiry {expiry}, cap per referrer {cap} [{state}]")


@rewards_group.command("add")
@click.argument("name")
@click.option("--trigger", type=click.Choice(REWARD_TRIGGERS), required=True, help="The event that pays it.")
@click.option("--amount", type=click.IntRange(min=1), required=True, help="Credits per beneficiary.")
@click.option("--to", "beneficiary", type=click.Choice(REWARD_BENEFICIARIES), required=True,
              help="Who receives it.")
@click.option("--expires-in", "expires_in", type=click.IntRange(min=1), default=None,
              help="Days until the reward expires (default: default_credit_expiration).")
@click.option("--cap", type=click.IntRange(min=0), default=None, help="At most this many referrals paid per referrer.")
@with_appcontext
def add(name: str, trigger: str, amount: int, beneficiary: str, expires_in: int | None, cap: int | None):
    """Add the reward rule NAME."""
    rule = rewards.add_rule(name, trigger, amount, beneficiary, expires_in_days=expires_in, cap_per_referrer=cap)
    click.echo(f"added {rule.name}")


@rewards_group.command("disable")
@click.argument("name")
@with_appcontext
def disable(name: str):
    """Stop the rule NAME from paying new rewards."""
    rewards.disable_rule(name)
    click.echo(f"disabled {name}")

"""`flask hosts add|list|enable|disable|remove`: the GPU hosts proxy.py spreads work across."""
import click
from flask import current_app
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.services import gpu_pool


@click.group("hosts", cls=ServiceGroup)
def hosts_group():
    """Manage the GPU hosts behind the proxy."""


@hosts_group.command("add")
@click.argument("url")
@click.option("--name", help="A short name shown in listings.")
@with_appcontext
def add(url: str, name: str | None):
    """Add the GPU host at URL (e.g. http://10.0.0.5:5200)."""
    host = gpu_pool.add_host(url, name)
    click.echo(f"added {host.url}")


def _live_health(url: str) -> str:
    report, why_down = gpu_pool.fetch_health(url, current_app.config["ATELIER"].gpu_shared_secret)
    if report is None:
        return f"down ({why_down})"
    loaded = ",".join(report.get("loaded_models", [])) or "-"
    memory = report.get("memory", {})
    return (f"up loaded={loaded} queue={report.get('queue_depth')} in_flight={report.get('in_flight')} "
            f"memory={memory.get('used_bytes', 0) // 2**20}/{memory.get('budget_bytes', 0) // 2**20}MB "
            f"batches={report.get('batches_served')}")


@hosts_group.command("list")
@click.option("--no-health", is_flag=True, help="Do not ask each host for its health.")
@with_appcontext
def list_hosts(no_health: bool):
    """List hosts with their live health (loaded models, queue, memory)."""
    hosts = gpu_pool.list_hosts()
    if not hosts:
        click.echo("no hosts; add one with `flask hosts add URL`")
    for host in hosts:
        state = "enabled" if host.enabled else "disabled"
        health = "" if no_health else "\t" + _live_health(host.url)
        click.echo(f"{host.url}\t{host.name or '-'}\t{state}{health}")


@hosts_group.command("enable")
@click.argument("url")
@with_appcontext
def enable(url: str):
    """Put the host at URL back in rotation."""
    gpu_pool.set_host_enabled(url, True)
    click.echo(f"enabled {url}")


@hosts_group.command("disable")
@click.argument("url")
@with_appcontext
def disable(url: str):
    """Take the host at URL out of rotation."""
    gpu_pool.set_host_enabled(url, False)
    click.echo(f"disabled {url}")


@hosts_group.command("remove")
@click.argument("url")
@with_appcontext
def remove(url: str):
    """Forget the host at URL."""
    gpu_pool.remove_host(url)
    click.echo(f"removed {url}")

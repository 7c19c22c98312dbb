"""The command group every operator command lives in."""
import click

from app.errors import ApiError


class ServiceGroup(click.Group):
    """Commands call service functions; an ApiError they raise becomes a CLI error with the same message (exit 1)."""

    def invoke(self, ctx: click.Context):
        """Run the chosen command, turning a service's ApiError into a ClickException."""
        try:
            return super().invoke(ctx)
        except ApiError as error:
            raise click.ClickException(error.message) from error

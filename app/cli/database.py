from typing import Annotated

import typer

from app.core.config import get_settings
from app.db import migrate

cli = typer.Typer(
    help="Database schema (Alembic). Starts the embedded PostgreSQL when DATABASE_URL is unset.",
    no_args_is_help=True,
)


@cli.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(get_settings(), revision=revision)
    typer.echo(f"database at {migrate.current(get_settings())}")


@cli.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' empties it.")] = "-1",
) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    migrate.downgrade(get_settings(), revision=revision)
    typer.echo(f"database at {migrate.current(get_settings())}")


@cli.command()
def current() -> None:
    """Print the database's schema revision."""
    typer.echo(migrate.current(get_settings()))

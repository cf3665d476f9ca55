"""The `ragstore` command."""

import logging
from typing import Annotated

import typer
import uvicorn

from app.core.config import get_settings
from app.db import migrate

cli = typer.Typer(
    help="ragstore: documents and embeddings in PostgreSQL + pgvector, with streaming RAG chat.",
    no_args_is_help=True,
)
db_cli = typer.Typer(
    help="Database schema (Alembic). Starts the embedded PostgreSQL when DATABASE_URL is unset.",
    no_args_is_help=True,
)
cli.add_typer(db_cli, name="db")


@cli.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="RAGSTORE_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RAGSTORE_PORT", help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (migrates the database first unless RAGSTORE_MIGRATE_ON_START=false)."""
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )


@db_cli.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(get_settings(), revision=revision)
    typer.echo(f"database at {migrate.current(get_settings())}")


@db_cli.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' empties it.")] = "-1",
) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    migrate.downgrade(get_settings(), revision=revision)
    typer.echo(f"database at {migrate.current(get_settings())}")


@db_cli.command()
def current() -> None:
    """Print the database's schema revision."""
    typer.echo(migrate.current(get_settings()))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cli()

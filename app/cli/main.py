"""The `ragstore` command: serve, migrate, ingest, search and manage collections."""

import logging

import typer
from pydantic import ValidationError

from app.cli import database, ingest, manage, server, worker
from app.core.config import Settings, describe_settings_error
from app.core.errors import StartupError
from app.core.logging import LOG_FORMAT

cli = typer.Typer(
    help="ragstore: documents and embeddings in PostgreSQL + pgvector, with streaming RAG chat. "
    "Every command uses the embedded database unless DATABASE_URL is set.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.command()(server.serve)
cli.command()(ingest.ingest)
cli.command()(manage.search)
cli.command()(manage.info)
cli.command()(worker.worker)
cli.add_typer(database.cli, name="db")
cli.add_typer(manage.collections_cli, name="collections")
cli.add_typer(manage.documents_cli, name="documents")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    try:
        cli()
    except StartupError as error:
        typer.echo(f"ragstore: {error}", err=True)
        raise SystemExit(2) from None
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        # A bad setting is the user's to fix: say which, in a line each, not a traceback.
        for line in describe_settings_error(error):
            typer.echo(f"ragstore: {line}", err=True)
        raise SystemExit(2) from None

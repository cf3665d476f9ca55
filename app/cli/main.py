"""The `ragstore` command: serve, migrate, ingest, search and manage collections."""

import logging

import typer

from app.cli import database, ingest, manage, server, worker

cli = typer.Typer(
    help="ragstore: documents and embeddings in PostgreSQL + pgvector, with streaming RAG chat. "
    "Every command uses the embedded database unless DATABASE_URL is set.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.command()(server.serve)
cli.command()(ingest.ingest)
cli.command()(manage.search)
cli.command()(worker.worker)
cli.add_typer(database.cli, name="db")
cli.add_typer(manage.collections_cli, name="collections")
cli.add_typer(manage.documents_cli, name="documents")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cli()

"""`ragstore search`, `ragstore collections ...`, `ragstore documents ...`."""

from typing import Annotated

import typer
from rich.table import Table

from app.cli.runtime import console, run
from app.collection import service as collections
from app.core.config import describe_database, get_settings
from app.document import service as documents
from app.jobs.service import RetriedFailures
from app.runtime import Runtime
from app.search.service import SearchHit, SearchMode, SearchQuery

collections_cli = typer.Typer(help="List and delete collections.", no_args_is_help=True)
documents_cli = typer.Typer(
    help="List a collection's documents; retry the failed ones.", no_args_is_help=True
)

CollectionOption = Annotated[
    str,
    typer.Option("--collection", "-c", help="The collection (a session id of the original app)."),
]


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    collection: CollectionOption,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many results.")] = 4,
    mode: Annotated[str, typer.Option(help="vector, keyword or hybrid (both, fused).")] = "hybrid",
) -> None:
    """Search a collection and print the best chunks."""
    if mode not in ("vector", "keyword", "hybrid"):
        raise typer.BadParameter("mode is vector, keyword or hybrid", param_hint="--mode")

    async def work(runtime: Runtime) -> list[SearchHit]:
        async with runtime.database.session() as session:
            chosen: SearchMode = mode  # type: ignore[assignment]
            return await runtime.search.search(
                session, SearchQuery(collection, query, k=k, mode=chosen)
            )

    hits = run(work)
    table = Table(title=f"{mode} search: {query}")
    for column in ("score", "file", "page", "text"):
        table.add_column(column)
    for hit in hits:
        page = hit.metadata.get("page")
        snippet = " ".join(hit.text.split())[:160]
        table.add_row(f"{hit.score:.4f}", hit.filename, "" if page is None else str(page), snippet)
    console.print(table)


def info() -> None:
    """The database in use, the embedding model and its dimension, and what is stored."""

    async def work(runtime: Runtime) -> tuple[list[collections.CollectionSummary], str | None, int]:
        async with runtime.database.read_session() as session:
            listed, _ = await collections.list_collections(session, 100_000, 0)
        embedded = runtime.database.embedded
        psql = embedded.psql_command() if embedded is not None else None
        return listed, psql, runtime.embedding_model.dimensions

    listed, psql, dimensions = run(work)
    settings = get_settings()
    documents_total = sum(summary.document_count for summary in listed)
    chunks_total = sum(summary.chunk_count for summary in listed)
    console.print(f"database: {describe_database(settings)}", highlight=False)
    if psql is not None:
        console.print(f"psql: {psql}", highlight=False, soft_wrap=True)
    console.print(
        f"embedding model: {settings.embedding_model} ({settings.embedding_provider}, "
        f"{dimensions} dimensions)",
        highlight=False,
    )
    console.print(
        f"{len(listed)} collections, {documents_total} documents, {chunks_total} chunks",
        highlight=False,
    )
    for summary in listed:
        console.print(
            f"  {summary.collection.id}: {summary.document_count} documents, "
            f"{summary.chunk_count} chunks",
            highlight=False,
            soft_wrap=True,
        )


@collections_cli.command("list")
def list_collections() -> None:
    """Every collection with its number of documents."""

    async def work(runtime: Runtime) -> Table:
        async with runtime.database.session() as session:
            listed, total = await collections.list_collections(session, 10_000, 0)
        table = Table(title=f"{total} collections")
        for column in ("id", "name", "documents", "created"):
            table.add_column(column)
        for summary in listed:
            c = summary.collection
            table.add_row(
                c.id, c.name, str(summary.document_count), f"{c.created_at:%Y-%m-%d %H:%M}"
            )
        return table

    console.print(run(work))


@collections_cli.command("delete")
def delete_collection(
    collection_id: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a collection with its documents, chunks and vectors."""
    if not yes:
        typer.confirm(f"Delete collection {collection_id} and everything in it?", abort=True)

    async def work(runtime: Runtime) -> None:
        async with runtime.database.session() as session:
            await collections.delete_collection(session, collection_id)

    run(work)
    console.print(f"deleted collection {collection_id}")


@documents_cli.command("list")
def list_documents(collection: CollectionOption) -> None:
    """A collection's documents with their status, chunk count and error."""

    async def work(runtime: Runtime) -> Table:
        async with runtime.database.session() as session:
            listed, total = await documents.list_documents(session, collection, 10_000, 0)
        table = Table(title=f"{total} documents in {collection}")
        for column in ("filename", "status", "chunks", "error", "id"):
            table.add_column(column)
        for d in listed:
            table.add_row(d.filename, d.status, str(d.chunk_count), d.error or "", str(d.id))
        return table

    console.print(run(work))


@documents_cli.command("retry-failed")
def retry_failed(collection: CollectionOption) -> None:
    """Queue every failed document of a collection again (a worker processes them)."""

    async def work(runtime: Runtime) -> RetriedFailures:
        return await runtime.jobs.retry_failed(collection)

    retried = run(work)
    console.print(
        f"queued {len(retried.jobs)} failed documents of {collection}; a running server or "
        "`ragstore worker` processes them"
    )
    for document in retried.unfixable:
        console.print(
            f"not retried: {document.filename} ({document.id}): {document.error}; a retry "
            "would fail the same way, so upload a fixed file"
        )

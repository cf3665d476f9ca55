"""`ragstore search`, `ragstore collections ...`, `ragstore documents ...`."""

from typing import Annotated

import typer
from rich.table import Table

from app.cli.runtime import console, run
from app.collection import service as collections
from app.document import service as documents
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

    async def work(runtime: Runtime) -> int:
        return len(await runtime.jobs.retry_failed(collection))

    queued = run(work)
    console.print(
        f"queued {queued} failed documents of {collection}; a running server or "
        "`ragstore worker` processes them"
    )

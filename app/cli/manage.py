"""`ragstore search`, `ragstore collections ...`, `ragstore documents ...`."""

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated

import typer

from app.cli.output import JsonOption, emit_json, emit_rows
from app.cli.runtime import console, run
from app.collection import service as collections
from app.core.config import describe_database, get_settings
from app.db.models import Document
from app.document import service as documents
from app.document.schemas import DocumentRead
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
    as_json: JsonOption = False,
) -> None:
    """Search a collection and print the best chunks: id, score, file, page and text.
    Keyword search loads no embedding model."""
    if mode not in ("vector", "keyword", "hybrid"):
        raise typer.BadParameter("mode is vector, keyword or hybrid", param_hint="--mode")

    async def work(runtime: Runtime) -> list[SearchHit]:
        async with runtime.database.session() as session:
            chosen: SearchMode = mode  # type: ignore[assignment]
            return await runtime.search.search(
                session, SearchQuery(collection, query, k=k, mode=chosen)
            )

    hits = run(work)
    if as_json:
        emit_json([asdict(hit) for hit in hits])
        return
    rows = [
        (
            hit.chunk_id,
            f"{hit.score:.4f}",
            hit.filename,
            hit.metadata.get("page", ""),
            " ".join(hit.text.split())[:160],
        )
        for hit in hits
    ]
    emit_rows(f"{mode} search: {query}", ("chunk", "score", "file", "page", "text"), rows)


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
def list_collections(as_json: JsonOption = False) -> None:
    """Every collection with its numbers of documents and chunks."""

    async def work(runtime: Runtime) -> list[collections.CollectionSummary]:
        async with runtime.database.read_session() as session:
            listed, _ = await collections.list_collections(session, 100_000, 0)
        return listed

    listed = run(work)
    if as_json:
        emit_json(
            [
                {
                    "id": s.collection.id,
                    "name": s.collection.name,
                    "metadata": s.collection.metadata_,
                    "document_count": s.document_count,
                    "chunk_count": s.chunk_count,
                    "created_at": s.collection.created_at.isoformat(),
                }
                for s in listed
            ]
        )
        return
    rows = [
        (
            s.collection.id,
            s.collection.name,
            s.document_count,
            s.chunk_count,
            f"{s.collection.created_at:%Y-%m-%d %H:%M}",
        )
        for s in listed
    ]
    emit_rows(f"{len(listed)} collections", ("id", "name", "documents", "chunks", "created"), rows)


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
def list_documents(collection: CollectionOption, as_json: JsonOption = False) -> None:
    """A collection's documents with their id, status, chunk count and error."""

    async def work(runtime: Runtime) -> Sequence[Document]:
        async with runtime.database.read_session() as session:
            listed, _ = await documents.list_documents(session, collection, 100_000, 0)
        return listed

    listed = run(work)
    if as_json:
        emit_json([DocumentRead.model_validate(d).model_dump(mode="json") for d in listed])
        return
    rows = [(d.id, d.filename, d.status, d.chunk_count, d.error or "") for d in listed]
    emit_rows(
        f"{len(listed)} documents in {collection}",
        ("id", "filename", "status", "chunks", "error"),
        rows,
    )


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

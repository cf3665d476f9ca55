"""The original app's programming interface, now persistent.

Thin facades over the services the HTTP API uses, for notebooks and scripts:

    async with DocumentProcessor(chunk_size=500, overlap=50) as processor:
        result = await processor.process_file("manual.pdf")

    async with VectorDatabase("manuals") as db:
        await db.ainsert_batch(["first text", "second text"])
        print(await db.asearch_by_text("which text?", k=2))   # [(text, score), ...]

Settings come from the environment, as for the server (embedded database
unless DATABASE_URL is set).
"""

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError

from app.core.config import Settings, get_settings
from app.embeddings.base import EmbeddedParts, Vectors, as_vectors
from app.embeddings.base import EmbeddingModel as BaseEmbeddingModel
from app.embeddings.factory import create_embedding_model
from app.ingestion.prepared import ProcessingOptions
from app.ingestion.upload import describe_file
from app.llm.client import LLMClients
from app.runtime import Runtime
from app.search.filters import Filter, FilterInput
from app.search.service import SearchHit, SearchMode, SearchQuery

__all__ = ["DocumentProcessor", "EmbeddingModel", "ProcessedFile", "SearchHit", "VectorDatabase"]


class _Synchronous:
    """The synchronous twins of async methods, for scripts without an event loop: they run
    on one private loop, so connections and HTTP pools outlive each call."""

    _runner: asyncio.Runner | None = None

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._runner = self._runner or asyncio.Runner()
            return self._runner.run(coroutine)
        coroutine.close()
        raise RuntimeError("inside async code, await the a-prefixed method instead")

    def _close_runner(self, closing: Coroutine[Any, Any, Any]) -> None:
        if self._runner is not None:
            self._runner.run(closing)
            self._runner.close()
            self._runner = None
        else:
            closing.close()


class _Facade:
    """Opens a Runtime on first use and closes it with `aclose()` or `async with`."""

    def __init__(self, settings: Settings | None) -> None:
        self.settings = settings or get_settings()
        self._runtime: Runtime | None = None

    async def _open(self) -> Runtime:
        if self._runtime is None:
            self._runtime = await Runtime.open(self.settings)
        return self._runtime

    async def aclose(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    async def __aenter__(self) -> Any:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass(frozen=True)
class ProcessedFile:
    document_id: str
    collection_id: str
    filename: str
    status: str
    chunk_count: int
    already_processed: bool
    from_cache: bool


class DocumentProcessor(_Facade):
    """Parse, chunk, embed and store files into a collection."""

    def __init__(
        self,
        chunk_size: int = 500,
        overlap: int = 50,
        batch_size: int | None = None,
        enable_cache: bool = True,
        collection: str = "default",
        settings: Settings | None = None,
    ) -> None:
        settings = settings or get_settings()
        if batch_size is not None:
            settings = settings.model_copy(update={"embedding_batch_size": batch_size})
        super().__init__(settings)
        self.collection = collection
        self.options = ProcessingOptions(
            chunk_size=chunk_size, chunk_overlap=overlap, use_cache=enable_cache
        )
        self.options.splitter()

    async def process_file(
        self, path: str | Path, metadata: dict[str, Any] | None = None
    ) -> ProcessedFile:
        """Store one file as a document of the collection; unchanged files are skipped."""
        runtime = await self._open()
        stored = await asyncio.to_thread(describe_file, Path(path))
        options = ProcessingOptions(
            self.options.chunk_size,
            self.options.chunk_overlap,
            metadata or {},
            self.options.use_cache,
        )
        result = await runtime.ingestion.ingest(
            stored, self.collection, options, create_collection=True
        )
        return ProcessedFile(
            document_id=str(result.document.id),
            collection_id=result.collection.id,
            filename=result.document.filename,
            status=result.document.status,
            chunk_count=result.document.chunk_count,
            already_processed=result.already_processed,
            from_cache=result.from_cache,
        )


class EmbeddingModel(BaseEmbeddingModel, _Synchronous):
    """The configured embedding provider (local MiniLM or OpenAI-compatible).

    Async (`await model.aget_embedding(text)`) or not (`model.get_embedding(text)`;
    `with EmbeddingModel() as model:` closes it, or call `close_sync()`)."""

    def __init__(self, settings: Settings | None = None, api_key: str | None = None) -> None:
        settings = settings or get_settings()
        self._clients = LLMClients(settings)
        self._provider = create_embedding_model(settings, self._clients).with_api_key(api_key)
        super().__init__(self._provider.model, self._provider.dimensions)

    def embedded_parts(self, texts: Sequence[str]) -> EmbeddedParts:
        return self._provider.embedded_parts(texts)

    async def close(self) -> None:
        await self._provider.close()
        await self._clients.close()

    def get_embedding(self, text: str) -> npt.NDArray[np.float32]:
        """The vector of one text (synchronous)."""
        vector: npt.NDArray[np.float32] = self._run(self.aget_embedding(text))
        return vector

    def get_embeddings(self, texts: Sequence[str]) -> Vectors:
        """The vectors of many texts, embedded in batches (synchronous)."""
        vectors: Vectors = self._run(self.aget_embeddings_batched(texts))
        return vectors

    def close_sync(self) -> None:
        """Close what the synchronous methods opened."""
        self._close_runner(self.close())

    def __enter__(self) -> "EmbeddingModel":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()


class VectorDatabase(_Facade, _Synchronous):
    """A collection seen as the original app's vector store: texts in, (text, score) out."""

    def __init__(
        self,
        collection: str = "default",
        embedding_model: BaseEmbeddingModel | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(settings)
        self.collection = collection
        self._embedding_model = embedding_model

    async def _model(self) -> BaseEmbeddingModel:
        return self._embedding_model or (await self._open()).embedding_model

    async def ainsert(self, text: str, vector: npt.ArrayLike | None = None) -> None:
        """Store one text, embedded here unless its vector is given."""
        vectors = None if vector is None else np.asarray([vector], dtype=np.float32)
        await self.ainsert_batch([text], vectors)

    async def ainsert_batch(
        self, texts: Sequence[str], vectors: npt.ArrayLike | None = None
    ) -> int:
        """Store many texts at once (embedded in batches unless vectors are given)."""
        runtime = await self._open()
        if vectors is None and self._embedding_model is not None:
            vectors = await self._embedding_model.aget_embeddings_batched(texts)
        given = (
            None
            if vectors is None
            else as_vectors(np.asarray(vectors), runtime.embedding_model.dimensions)
        )
        return await runtime.ingestion.insert_texts(self.collection, texts, given)

    async def asearch(self, vector: npt.ArrayLike, k: int = 4) -> list[tuple[str, float]]:
        """The k most similar texts to `vector`, highest cosine similarity first."""
        runtime = await self._open()
        query = _query_vector(vector, runtime.embedding_model.dimensions)
        async with runtime.database.session() as session:
            hits = await runtime.search.search_by_vector(
                session, SearchQuery(self.collection, "", k=k, mode="vector"), query
            )
        return [(hit.text, hit.score) for hit in hits]

    async def asearch_by_text(self, query: str, k: int = 4) -> list[tuple[str, float]]:
        """Embed `query` and return the k most similar texts, best first."""
        vector = await (await self._model()).aget_embedding(query)
        return await self.asearch(vector, k)

    async def aquery(
        self,
        text: str,
        k: int = 4,
        mode: SearchMode = "hybrid",
        filters: dict[str, Any] | None = None,
    ) -> list[SearchHit]:
        """Search as the HTTP API does: hits with chunk id, document id, filename, text,
        metadata, score (and its similarity and keyword rank). `filters` in OpenAI's
        format or the `{"key": value}` shorthand."""
        runtime = await self._open()
        query = SearchQuery(self.collection, text, k=k, mode=mode, filters=_filters(filters))
        async with runtime.database.read_session() as session:
            return await runtime.search.search(session, query)

    def query(
        self,
        text: str,
        k: int = 4,
        mode: SearchMode = "hybrid",
        filters: dict[str, Any] | None = None,
    ) -> list[SearchHit]:
        """Synchronous aquery."""
        hits: list[SearchHit] = self._run(self.aquery(text, k, mode, filters))
        return hits

    def insert(self, text: str, vector: npt.ArrayLike) -> None:
        """Synchronous ainsert, for scripts without an event loop."""
        self._run(self.ainsert(text, vector))

    def search(self, vector: npt.ArrayLike, k: int = 4) -> list[tuple[str, float]]:
        """Synchronous asearch, for scripts without an event loop."""
        hits: list[tuple[str, float]] = self._run(self.asearch(vector, k))
        return hits

    def close(self) -> None:
        """Close what the synchronous methods opened."""
        self._close_runner(self.aclose())


def _query_vector(vector: npt.ArrayLike, dimensions: int) -> npt.NDArray[np.float32]:
    """The query as a vector of the database's dimension, or a ValueError saying what was
    wrong (before, None or a wrong length surfaced as a driver traceback)."""
    try:
        query = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"search takes a vector of {dimensions} numbers: {exc}") from None
    if query.shape != (dimensions,) or not np.isfinite(query).all():
        raise ValueError(
            f"search takes a vector of {dimensions} finite numbers, got "
            f"{vector if vector is None else f'shape {query.shape}'}; to search by text, "
            "use asearch_by_text(text) or aquery(text)"
        )
    return query


def _filters(filters: dict[str, Any] | None) -> Filter | None:
    if filters is None:
        return None
    try:
        return _FILTER.validate_python(filters)
    except ValidationError as exc:
        raise ValueError(f"invalid filters: {exc.errors()[0]['msg']}") from None


_FILTER: TypeAdapter[Filter] = TypeAdapter(FilterInput)

"""Column types, and what PostgreSQL's own types cannot hold."""

import math
from typing import Any

from pgvector.sqlalchemy import BIT, Vector
from sqlalchemy import Float, cast, func
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement

from app.core.config import QUANTIZED_INDEX_MIN_DIMENSIONS
from app.core.errors import UnprocessableContent


class PgVector(Vector):
    """pgvector's `vector(N)`, with values handed to the driver untouched.

    Every connection registers pgvector's binary asyncpg codec (binary COPY
    needs it), so numpy arrays go to asyncpg as they are. pgvector's own
    SQLAlchemy type would first turn them into text, which that codec
    refuses with a DataError.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: Any) -> None:
        return None


def quantizes_vectors(dimensions: int) -> bool:
    """Whether the HNSW index holds binary-quantized vectors (one bit per dimension), whose
    candidates searches re-rank by the full vectors (see QUANTIZED_INDEX_MIN_DIMENSIONS)."""
    return dimensions >= QUANTIZED_INDEX_MIN_DIMENSIONS


def hnsw_index_column(dimensions: int) -> str:
    """The column and operator class of the chunks' HNSW index (as migration 0011 makes
    it), for rebuilding it with other options."""
    if quantizes_vectors(dimensions):
        return f"(binary_quantize(embedding)::bit({dimensions})) bit_hamming_ops"
    return "embedding vector_cosine_ops"


# The chunks each partition's HNSW index holds (migration 0014): those a write into an
# indexed collection has not yet handed to the graph are scanned beside it.
HNSW_INDEX_PREDICATE = "in_graph"


def indexed_cosine_distance(column: Any, vector: Any, dimensions: int) -> ColumnElement[float]:
    """The distance the HNSW index orders by: the full vectors' cosine distance, or from
    1,024 dimensions the Hamming distance of their binary quantizations, written as the
    index's expression so that PostgreSQL uses it."""
    if not quantizes_vectors(dimensions):
        return column.cosine_distance(vector)  # type: ignore[no-any-return]
    quantized = cast(func.binary_quantize(column), BIT(dimensions))
    question = func.binary_quantize(cast(vector, PgVector(dimensions)))
    return quantized.op("<~>", return_type=Float)(question)


def jsonb_refusal(value: object) -> str | None:
    """What in this JSON scalar PostgreSQL's jsonb cannot take, or None if it can.

    Python's json module reads `NaN`, `Infinity` and lone `\\udXXX` escapes, which
    PostgreSQL does not; and jsonb, like text, cannot hold U+0000.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN or Infinity"
    if isinstance(value, str):
        if "\x00" in value:
            return "NUL characters"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "unpaired surrogates (invalid Unicode)"
    return None


# Filters address keys, not paths: deeper metadata is never useful, and deep
# nesting costs recursion in every JSON encoder on its way to PostgreSQL.
MAX_METADATA_DEPTH = 32
METADATA_TOO_DEEP = f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep"


def check_metadata(metadata: dict[str, Any]) -> None:
    """Refuse metadata (of a collection or an upload) that jsonb cannot store, or that is
    nested deeper than anyone needs."""
    _check_metadata_value(metadata, depth=1)


def _check_metadata_value(value: object, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise UnprocessableContent(METADATA_TOO_DEEP)
    refusal = jsonb_refusal(value)
    if refusal is not None:
        raise UnprocessableContent(f"metadata must not contain {refusal}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_metadata_value(key, depth)
            _check_metadata_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_metadata_value(item, depth + 1)

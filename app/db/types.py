"""Column types, and what PostgreSQL's own types cannot hold."""

import math
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy.engine import Dialect

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

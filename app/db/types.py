"""Column types, and what PostgreSQL's own types cannot hold."""

import math
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy.engine import Dialect


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

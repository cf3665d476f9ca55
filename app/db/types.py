"""Column types."""

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

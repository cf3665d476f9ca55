"""Declarative base: stable constraint names so migrations never guess them."""

import re

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# chunk_partition_name() (migration 0012) and keyword_partition_name() (0017): a collection's
# partitions of `chunks` and `keyword_postings`; and the tables of a bulk load being staged
# (app/document/staging.py).
COLLECTION_PARTITION = re.compile(
    r"chunks_[0-9a-f]{24}|keyword_postings_[0-9]+|staged_[0-9a-f]{32}_(chunks|terms|postings)"
)


def described_by_models(name: str | None, type_: str, _parent: object) -> bool:
    """What Alembic compares with the models: not procrastinate's tables (its own SQL), nor
    the partitions of `chunks` and `keyword_postings`, which ragstore makes as collections
    get chunks, nor the tables a bulk load stages."""
    if type_ != "table":
        return True
    return not (
        (name or "").startswith("procrastinate_") or COLLECTION_PARTITION.fullmatch(name or "")
    )

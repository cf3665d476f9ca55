"""Finding the chunks that answer a query."""

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from app.search.repository import SearchRepository


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    text: str
    score: float
    metadata: dict[str, Any]


async def search_by_vector(
    session: AsyncSession, collection_id: str, vector: npt.NDArray[np.float32], k: int
) -> list[SearchHit]:
    """The k most similar chunks of a collection, best first."""
    rows = await SearchRepository(session).nearest(collection_id, vector, k)
    return [
        SearchHit(row.id, row.document_id, row.filename, row.text, float(row.score), row.metadata)
        for row in rows
    ]

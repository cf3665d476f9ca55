"""Search SQL: nearest chunks by cosine distance through the HNSW index."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def nearest(
        self, collection_id: str, vector: npt.NDArray[np.float32], k: int
    ) -> Sequence[Row[Any]]:
        """The k chunks of the collection closest to `vector`, with cosine similarity."""
        result = await self.session.execute(
            text(
                """
                SELECT c.id, c.document_id, d.filename, c.text, c.metadata,
                       1 - (c.embedding <=> :vector) AS score
                FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE c.collection_id = :collection_id
                ORDER BY c.embedding <=> :vector
                LIMIT :k
                """
            ),
            {"vector": vector, "collection_id": collection_id, "k": k},
        )
        return result.all()

"""One interface for every embedding provider."""

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
EmbeddedCallback = Callable[[int], None]
# (position of a part's first text, its vectors), as each part is done.
EmbeddedParts = AsyncGenerator[tuple[int, Vectors], None]


class EmbeddingModel(ABC):
    """Turns texts into unit-length float32 vectors of a fixed dimension.

    The names follow the original app's Python API (`aget_embedding`,
    `aget_embeddings`, `aget_embeddings_batched`), now backed by providers
    that batch, run concurrently and retry.
    """

    def __init__(self, model: str, dimensions: int) -> None:
        self.model = model
        self.dimensions = dimensions

    @abstractmethod
    def embedded_parts(self, texts: Sequence[str]) -> EmbeddedParts:
        """Embed any number of texts, in parts, each yielded as soon as it is done: the
        position of its first text and its vectors, in the order the parts finish.

        Iterate it within `contextlib.aclosing`: leaving early cancels the parts still
        in flight.
        """

    async def aget_embeddings_batched(
        self, texts: Sequence[str], on_embedded: EmbeddedCallback | None = None
    ) -> Vectors:
        """Embed any number of texts; row i of the result is the vector of texts[i].

        `on_embedded(n)` is called as each part of n texts is done.
        """
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        async with aclosing(self.embedded_parts(texts)) as parts:
            async for start, part in parts:
                vectors[start : start + len(part)] = part
                if on_embedded is not None:
                    on_embedded(len(part))
        return vectors

    async def aget_embeddings(self, texts: Sequence[str]) -> Vectors:
        return await self.aget_embeddings_batched(texts)

    async def aget_embedding(self, text: str) -> npt.NDArray[np.float32]:
        vectors = await self.aget_embeddings_batched([text])
        first: npt.NDArray[np.float32] = vectors[0]
        return first

    # Whether a request's own key can bill its embeddings (a provider's API); a local
    # model needs none, and ignores one.
    uses_api_keys = False

    def with_api_key(self, api_key: str | None) -> "EmbeddingModel":
        """The same model billed to another key; providers without keys return themselves."""
        return self

    async def warm_up(self) -> None:
        """Get ready for the first request (a local model loads and runs once); a remote
        provider has nothing to load."""
        return None

    async def close(self) -> None:
        """Release what the provider holds (HTTP pools, worker threads)."""
        return None


def as_vectors(
    rows: Sequence[Sequence[float] | npt.NDArray[np.float32]] | npt.NDArray[np.float32],
    dimensions: int,
) -> Vectors:
    array = np.asarray(rows, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dimensions:
        raise ValueError(f"expected vectors of {dimensions} dimensions, got shape {array.shape}")
    return array

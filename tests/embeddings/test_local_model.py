"""The default provider: all-MiniLM-L6-v2 on the CPU, offline, with no API key."""

import numpy as np
import pytest

from app.core.config import Settings
from app.embeddings.local_model import LocalEmbeddingModel
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import serve_app
from tests.support.uploads import upload


@pytest.fixture(scope="module")
async def model() -> LocalEmbeddingModel:
    return LocalEmbeddingModel()


async def test_vectors_are_unit_length_and_meaningful(model: LocalEmbeddingModel) -> None:
    vectors = await model.aget_embeddings_batched(
        [
            "How do I reset my password?",
            "Steps to recover a forgotten login password",
            "The mitochondria is the powerhouse of the cell",
        ]
    )

    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > unrelated + 0.3


async def test_upload_works_without_any_api_key(settings: Settings, upstream: FakeOpenAI) -> None:
    keyless = settings.model_copy(
        update={
            "embedding_provider": "local",
            "embedding_model": "all-MiniLM-L6-v2",
            "openai_api_key": None,
            "openai_base_url": "http://127.0.0.1:1/v1",
        }
    )
    async with serve_app(keyless, client_timeout=120) as client:
        response = await upload(client, "Pgvector brings vector search to PostgreSQL.")
        # A key has nothing to bill with a local model: it is ignored, even in the background.
        queued = await upload(
            client,
            "HNSW indexes trade recall for speed.",
            "b.txt",
            api_key="sk-unused",
            route="/api/upload-document?wait=false",
        )

    assert response.status_code == 200, response.text
    assert response.json()["chunk_count"] == 1
    assert queued.status_code == 202, queued.text
    assert upstream.requests == []

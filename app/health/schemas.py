from typing import Literal

from pydantic import BaseModel, Field

from app.embeddings.warm_up import ModelState


class HealthResponse(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    embedding_provider: str
    embedding_model: str
    embedding_dimensions: int
    model: ModelState = Field(
        description="loading while the embedding model loads at start-up (searches and "
        "uploads would wait for it), ready after; failed if it could not load."
    )
    version: str


class ReadyResponse(BaseModel):
    status: Literal["ready"]

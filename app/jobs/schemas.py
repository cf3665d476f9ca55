import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.db.models import JobState


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    # None once the document was deleted (the job then ended `cancelled`).
    document_id: uuid.UUID | None
    collection_id: str | None = Field(description="Where its upload went.")
    filename: str | None
    generation: int
    state: JobState
    attempts: int
    units_parsed: int
    chunks_made: int
    chunks_embedded: int
    chunks_stored: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobPage(BaseModel):
    data: list[JobRead]
    total: int
    limit: int
    offset: int

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

COLLECTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(
        default=None,
        pattern=COLLECTION_ID_PATTERN,
        description="Choose the id (letters, digits, `._:-`); a UUID is generated when omitted.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class CollectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    name: str
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    document_count: int
    created_at: datetime
    updated_at: datetime


class CollectionPage(BaseModel):
    data: list[CollectionRead]
    total: int
    limit: int
    offset: int

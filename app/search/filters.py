"""Metadata filters, in OpenAI's vector-store filter format, compiled to parameterised SQL.

    {"type": "eq", "key": "page", "value": 3}
    {"type": "and", "filters": [{"type": "gte", "key": "year", "value": 2020},
                                {"type": "in", "key": "filename", "value": ["a.pdf", "b.pdf"]}]}

Keys name chunk metadata (JSONB), except `document_id` and `filename`, which
name the document's columns. Keys and values always travel as bind
parameters: a key like "x') OR true --" is just a key that no chunk has.
"""

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy import Numeric, and_, case, cast, func, literal, not_, or_
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.sql.elements import ColumnElement

from app.core.errors import UnprocessableContent
from app.db.models import Chunk, Document
from app.db.types import jsonb_refusal

Scalar = str | int | float | bool
MAX_DEPTH = 8
MAX_CONDITIONS = 64
MAX_LIST_VALUES = 1000
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


class ComparisonFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str = Field(min_length=1, max_length=128)
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_fits_the_operator(self) -> "ComparisonFilter":
        listed = isinstance(self.value, list)
        for item in [self.key, *(self.value if isinstance(self.value, list) else [self.value])]:
            # Keys and values reach PostgreSQL as jsonb or text.
            if (refusal := jsonb_refusal(item)) is not None:
                raise ValueError(f"a filter must not contain {refusal}")
        if self.type in ("in", "nin"):
            if not listed or not 1 <= len(self.value) <= MAX_LIST_VALUES:  # type: ignore[arg-type]
                raise ValueError(f"'{self.type}' takes a list of 1 to {MAX_LIST_VALUES} values")
        elif listed:
            raise ValueError(f"'{self.type}' takes one value, not a list")
        if self.type in RANGE_OPERATORS:
            if isinstance(self.value, bool) or not isinstance(self.value, int | float | str):
                raise ValueError(f"'{self.type}' takes a number or an ISO date")
            if isinstance(self.value, str) and _as_datetime(self.value) is None:
                raise ValueError(f"'{self.type}' takes a number or an ISO date, not {self.value!r}")
        return self


class CompoundFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["and", "or"]
    filters: list["Filter"] = Field(min_length=1, max_length=MAX_CONDITIONS)


Filter = Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")]
CompoundFilter.model_rebuild()
FILTER_TYPES = frozenset(
    ComparisonFilter.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
) | {"and", "or"}
RIGHT_FORM = '{"type": "eq", "key": "product", "value": "x200"}'


def expand_shorthand(value: Any) -> Any:
    """`{"product": "x200", "year": 2026}` means every key equals its value (a list value:
    is one of them), as in other vector stores; the full form passes as it is. A value
    that is itself an object is refused with the right form shown."""
    if not isinstance(value, dict) or value.get("type") in FILTER_TYPES or not value:
        return value
    conditions = []
    for key, item in value.items():
        if isinstance(item, dict):
            raise ValueError(
                f"filter shorthand takes {{key: value}} pairs, but {key!r} holds an object; "
                f"for other comparisons use the full form, such as "
                f'{{"type": "gte", "key": {json.dumps(key)}, "value": ...}} (see {RIGHT_FORM})'
            )
        operator = "in" if isinstance(item, list) else "eq"
        conditions.append({"type": operator, "key": key, "value": item})
    return conditions[0] if len(conditions) == 1 else {"type": "and", "filters": conditions}


FilterInput = Annotated[Filter, BeforeValidator(expand_shorthand)]


def check_size(filter_: Filter) -> None:
    """Refuse filters deeper than MAX_DEPTH or with more than MAX_CONDITIONS comparisons."""
    conditions = 0

    def walk(node: Filter, depth: int) -> None:
        nonlocal conditions
        if depth > MAX_DEPTH:
            raise UnprocessableContent(f"filters nest deeper than {MAX_DEPTH} levels")
        if isinstance(node, CompoundFilter):
            for child in node.filters:
                walk(child, depth + 1)
        else:
            conditions += 1

    walk(filter_, 1)
    if conditions > MAX_CONDITIONS:
        raise UnprocessableContent(f"filters hold more than {MAX_CONDITIONS} comparisons")


def compile_filter(filter_: Filter) -> ColumnElement[bool]:
    """A WHERE condition over Chunk (and Document, joined by the caller)."""
    if isinstance(filter_, CompoundFilter):
        parts = [compile_filter(child) for child in filter_.filters]
        return and_(*parts) if filter_.type == "and" else or_(*parts)
    if filter_.key in ("document_id", "filename"):
        return _column_condition(filter_)
    return _metadata_condition(filter_)


def _column_condition(filter_: ComparisonFilter) -> ColumnElement[bool]:
    if filter_.type in RANGE_OPERATORS:
        raise UnprocessableContent(f"'{filter_.key}' takes eq, ne, in or nin")
    given = filter_.value if isinstance(filter_.value, list) else [filter_.value]
    matches: ColumnElement[bool]
    if filter_.key == "document_id":
        matches = Chunk.document_id.in_([_as_uuid(value) for value in given])
    else:
        matches = Document.filename.in_([str(value) for value in given])
    return not_(matches) if filter_.type in ("ne", "nin") else matches


def _metadata_condition(filter_: ComparisonFilter) -> ColumnElement[bool]:
    metadata = Chunk.metadata_
    if filter_.type in ("eq", "ne", "in", "nin"):
        values = filter_.value if isinstance(filter_.value, list) else [filter_.value]
        # JSONB containment compares type and value exactly: 3 matches 3, not "3".
        matches = or_(*(metadata.contains({filter_.key: value}) for value in values))
        return not_(matches) if filter_.type in ("ne", "nin") else matches
    element = metadata[filter_.key]
    if isinstance(filter_.value, str):
        # Only values that are valid timestamps are compared; others never match.
        text_value = metadata[filter_.key].astext
        comparable: Any = case(
            (
                func.pg_input_is_valid(text_value, "timestamptz"),
                cast(text_value, TIMESTAMP(timezone=True)),
            ),
            else_=None,
        )
        bound: Any = _as_datetime(filter_.value)
    else:
        comparable = case(
            (func.jsonb_typeof(element) == "number", cast(element.astext, Numeric)),
            else_=None,
        )
        # As numeric, which holds any JSON number: a Python int would be sent as an int64
        # and one past its range failed in the driver (a 500).
        bound = literal(Decimal(repr(filter_.value)), Numeric())
    operators: dict[str, ColumnElement[bool]] = {
        "gt": comparable > bound,
        "gte": comparable >= bound,
        "lt": comparable < bound,
        "lte": comparable <= bound,
    }
    return operators[filter_.type]


def _as_uuid(value: Scalar) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise UnprocessableContent(f"document_id {value!r} is not a UUID") from exc


def _as_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            return None
    # A date or time without a zone is taken as UTC, as stored timestamps are.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        # The driver sends it as UTC: an offset past year 1 or 9999 cannot be (0001-01-01
        # at +14:00 is in year 0), and failed in the driver (a 500).
        return parsed.astimezone(UTC)
    except OverflowError:
        return None

"""What one search statement needs: the query with its vector, filter and tuning, and the
parts every mode's SQL shares (the result columns, the collection scope, web-search syntax)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, and_, cast, func, literal
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.db.models import Chunk, Document
from app.db.types import quantizes_vectors

AnySelect = Select[*tuple[Any, ...]]
SearchRows = Sequence[Row[*tuple[Any, ...]]]

# Quotes and a leading `-` are explicit web-search syntax (phrases, exclusions): the
# user wants those semantics. A plain "or" needs nothing: plain questions OR their words.
OPERATORS = re.compile(r'"|(^|\s)-\w')
EXCLUDED_WORD = re.compile(r"(^|\s)-\S+")


@dataclass(frozen=True)
class SearchPlan:
    """The statement to run: a SearchQuery with its vector, compiled filter and tuning."""

    collection_id: str
    k: int
    vector: npt.NDArray[np.float32] | None = None
    text: str | None = None
    condition: ColumnElement[bool] | None = None
    candidates: int = 60
    rrf_k: int = 20
    keyword_weight: float = 1.0
    language: str = "english"
    # Exact: the vector list by a scan without the index, the keyword list by exhaustive
    # BM25. For filters so selective that the indexes give up before k rows.
    exact: bool = False
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # Postings read per query word, best BM25 weight first (see app/search/bm25.py).
    bm25_depth: int = 300
    # A question whose words have at most this many postings is scored exhaustively.
    bm25_exact_postings: int = 25_000
    # Score every chunk that holds a query word, not only the best postings of each.
    bm25_exact: bool = False
    # Candidates re-ranked by their full vectors when the index holds quantized ones.
    vector_rerank_candidates: int = 200

    @property
    def dimensions(self) -> int:
        """The query vector's dimension (the database's): it decides the index's expression."""
        return 0 if self.vector is None else int(self.vector.shape[0])

    def vector_shortlist(self, wanted: int) -> int:
        """How many of the HNSW index's nearest rows to read for `wanted`: more than that
        when the index holds binary-quantized vectors, to re-rank by the full ones."""
        if self.exact or not quantizes_vectors(self.dimensions):
            return wanted
        return max(wanted, self.vector_rerank_candidates)

    @property
    def uses_operators(self) -> bool:
        return self.text is not None and OPERATORS.search(self.text) is not None

    @property
    def ranked_words(self) -> str:
        """The text whose words BM25 scores: the question without its excluded words."""
        return EXCLUDED_WORD.sub(" ", self.text or "")

    @property
    def keyword_condition(self) -> ColumnElement[bool] | None:
        """The filter, and for web-search syntax the phrases and exclusions, which BM25
        scores cannot express, as a condition on Chunk (and Document)."""
        if not self.uses_operators:
            return self.condition
        config = cast(literal(self.language), REGCONFIG)
        matches = Chunk.text_search.op("@@")(func.websearch_to_tsquery(config, self.text))
        return matches if self.condition is None else and_(self.condition, matches)


RESULT_COLUMNS = (
    Chunk.id,
    Chunk.document_id,
    Document.filename,
    Chunk.text,
    Chunk.metadata_.label("metadata"),
)


def scoped(
    statement: AnySelect,
    collection_id: str | BindParameter[str],
    condition: ColumnElement[bool] | None,
) -> AnySelect:
    statement = statement.join(Document, Document.id == Chunk.document_id).where(
        Chunk.collection_id == collection_id
    )
    return statement.where(condition) if condition is not None else statement

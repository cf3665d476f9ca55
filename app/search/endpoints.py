from fastapi import APIRouter

from app.core.deps import ReadSessionDep, SearchDep
from app.core.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses
from app.core.logging import request_api_key
from app.search.schemas import (
    CollectionSearchRequest,
    SearchRequest,
    SearchResponse,
    SearchResult,
)

router = APIRouter(tags=["search"], responses=INVALID_REQUEST)

_ERRORS = error_responses(
    {
        400: UNREADABLE_BODY,
        401: "No API key, or the provider rejected it",
        404: "No such collection",
        422: "Invalid query, k, mode or filters",
        502: "Embedding the query failed after retries",
    }
)


async def _search(
    collection_id: str, body: SearchRequest, session: ReadSessionDep, search: SearchDep
) -> SearchResponse:
    request_api_key.set(body.api_key)
    hits = await search.with_api_key(body.api_key).search(
        session, collection_id, body.query, body.k, body.mode, body.filters, body.min_score
    )
    return SearchResponse(
        query=body.query,
        mode=body.mode,
        results=[SearchResult.model_validate(hit) for hit in hits],
    )


@router.post(
    "/api/collections/{collection_id}/search",
    summary="Search a collection",
    responses=_ERRORS,
)
async def search_collection(
    collection_id: str, body: SearchRequest, session: ReadSessionDep, search: SearchDep
) -> SearchResponse:
    """The k best chunks for a query: vector, keyword or hybrid, with metadata filters."""
    return await _search(collection_id, body, session, search)


@router.post("/api/search", summary="Search a session", responses=_ERRORS)
async def search_session(
    body: CollectionSearchRequest, session: ReadSessionDep, search: SearchDep
) -> SearchResponse:
    """The same search, naming the collection by the original app's `session_id`."""
    return await _search(body.session_id, body, session, search)

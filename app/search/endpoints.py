from fastapi import APIRouter

from app.db.dependencies import ReadSessionDep
from app.search.dependencies import SearchDep
from app.search.schemas import SearchRequest, SearchResponse, search_query, search_response
from app.web.errors import INVALID_REQUEST, UNREADABLE_BODY, error_responses

router = APIRouter(tags=["search"], responses=INVALID_REQUEST)

SEARCH_ERRORS = error_responses(
    {
        400: UNREADABLE_BODY,
        401: "No API key, or the provider rejected it",
        404: "No such collection",
        422: "Invalid query, k, mode or filters",
        502: "Embedding the query failed after retries",
    }
)


@router.post(
    "/api/collections/{collection_id}/search",
    summary="Search a collection",
    responses=SEARCH_ERRORS,
)
async def search_collection(
    collection_id: str, body: SearchRequest, session: ReadSessionDep, search: SearchDep
) -> SearchResponse:
    """The k best chunks for a query: vector, keyword or hybrid, with metadata filters."""
    hits = await search.search(session, search_query(collection_id, body))
    return search_response(body, hits)

from typing import Annotated

from fastapi import Depends

from app.search.service import SearchService
from app.web.dependencies import RuntimeDep


async def get_search_service(runtime: RuntimeDep) -> SearchService:
    return runtime.search


SearchDep = Annotated[SearchService, Depends(get_search_service)]

from typing import Annotated

from fastapi import Depends

from app.chat.service import ChatService
from app.web.dependencies import RuntimeDep


async def get_chat_service(runtime: RuntimeDep) -> ChatService:
    return runtime.chat


ChatDep = Annotated[ChatService, Depends(get_chat_service)]

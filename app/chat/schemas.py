from pydantic import BaseModel, Field

from app.llm.client import RequestApiKey


class ChatRequest(BaseModel):
    """The original app's `/api/chat` body, plus an optional session to answer from."""

    developer_message: str = Field(description="Instructions for the model (the system prompt).")
    user_message: str = Field(description="The user's message.")
    model: str | None = Field(
        default=None, description="Chat model; RAGSTORE_DEFAULT_CHAT_MODEL when omitted."
    )
    api_key: RequestApiKey | None = Field(
        default=None,
        description="OpenAI API key for this request; OPENAI_API_KEY on the server when omitted. "
        "Never stored or logged.",
    )
    session_id: str | None = Field(
        default=None,
        description="Answer from this collection's documents (retrieval-augmented).",
    )


class RagChatRequest(BaseModel):
    """The original app's `/api/rag-chat` body."""

    user_message: str = Field(min_length=1, description="The question.")
    session_id: str = Field(min_length=1, description="The collection to answer from.")
    model: str | None = Field(
        default=None, description="Chat model; RAGSTORE_DEFAULT_CHAT_MODEL when omitted."
    )
    api_key: RequestApiKey | None = Field(
        default=None, description="OpenAI API key for this request."
    )
    use_rag: bool = Field(
        default=True, description="False: a plain chat answer, without the documents."
    )

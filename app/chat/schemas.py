from pydantic import BaseModel, Field


class ChatRequest(BaseModel):
    """The original app's `/api/chat` body."""

    developer_message: str = Field(description="Instructions for the model (the system prompt).")
    user_message: str = Field(description="The user's message.")
    model: str | None = Field(
        default=None, description="Chat model; RAGSTORE_DEFAULT_CHAT_MODEL when omitted."
    )
    api_key: str | None = Field(
        default=None,
        description="OpenAI API key for this request; OPENAI_API_KEY on the server when omitted. "
        "Never stored or logged.",
    )

from app.core.config import Settings
from app.embeddings.base import EmbeddingModel
from app.llm.client import LLMClients


def create_embedding_model(settings: Settings, clients: LLMClients) -> EmbeddingModel:
    """The provider RAGSTORE_EMBEDDING_PROVIDER names."""
    if settings.embedding_provider == "local":
        from app.embeddings.local_model import LocalEmbeddingModel  # imports torch: only if used

        return LocalEmbeddingModel()
    from app.embeddings.openai_model import OpenAIEmbeddingModel

    return OpenAIEmbeddingModel(settings, clients)

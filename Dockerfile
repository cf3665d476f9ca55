# ragstore API image. With docker compose it talks to the `db` service;
# without DATABASE_URL it would run the embedded PostgreSQL in /data.
#
# It embeds through the openai provider (OpenAI, or any compatible server at
# OPENAI_BASE_URL), so it carries no torch and no CUDA: a few hundred MB, not
# several GB. tests/test_deployment.py resolves this install and fails on any
# nvidia-* or torch package. For the local model in a container, install the
# `local` extra with torch's CPU wheels
# (pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[local]')
# and set RAGSTORE_EMBEDDING_PROVIDER=local.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAGSTORE_DATA_DIR=/data \
    RAGSTORE_EMBEDDING_PROVIDER=openai

RUN useradd --create-home --uid 10001 ragstore \
    && mkdir /data && chown ragstore:ragstore /data

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so `ragstore db ...` finds alembic.ini and migrations/ beside the code.
RUN pip install -e .

USER ragstore
EXPOSE 8000
# `serve` applies migrations before it listens (RAGSTORE_MIGRATE_ON_START).
CMD ["ragstore", "serve", "--host", "0.0.0.0", "--port", "8000"]

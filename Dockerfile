# ragstore API image. With docker compose it talks to the `db` service;
# without DATABASE_URL it would run the embedded PostgreSQL in /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAGSTORE_DATA_DIR=/data

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

"""The `ragstore` command, run as a user runs it: a real process."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.embedded import EmbeddedPostgres
from tests.support.db import create_database
from tests.support.fake_openai import FakeOpenAI
from tests.support.invariants import settled_violations
from tests.support.net import free_port
from tests.support.settings import APP_SETTINGS, SERVER_KEY
from tests.support.uploads import long_text, upload

RAGSTORE = str(Path(sys.executable).with_name("ragstore"))


def ragstore(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGSTORE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def empty_database_env(postgres: EmbeddedPostgres) -> Iterator[dict[str, str]]:
    name = create_database(postgres)
    yield {**os.environ, "DATABASE_URL": postgres.url(name)}
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


def test_db_commands_upgrade_report_and_downgrade(empty_database_env: dict[str, str]) -> None:
    before = ragstore("db", "current", env=empty_database_env)
    upgraded = ragstore("db", "upgrade", env=empty_database_env)
    downgraded = ragstore("db", "downgrade", "base", env=empty_database_env)

    assert "no revision" in before.stdout
    assert upgraded.returncode == 0, upgraded.stderr
    assert "0019_keyword_stage_indexes_apart (head)" in upgraded.stdout
    assert downgraded.returncode == 0, downgraded.stderr
    assert "no revision" in downgraded.stdout


def test_help_lists_the_commands() -> None:
    result = ragstore("--help", env=dict(os.environ))

    assert result.returncode == 0
    for command in ("serve", "db"):
        assert command in result.stdout


def _wait_for_health(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(url)


def test_serve_starts_the_embedded_database_migrates_and_stops_it_on_exit(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "OPENAI_API_KEY")
    }
    env["RAGSTORE_DATA_DIR"] = str(tmp_path / "data")
    server = subprocess.Popen(
        [RAGSTORE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = _wait_for_health(f"http://127.0.0.1:{port}/api/health", server)
        pid_file = tmp_path / "data" / "pgdata" / "postmaster.pid"
        postgres_pid = int(pid_file.read_text().split()[0])
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)

    assert response.status_code == 200, response.text
    # uvicorn re-raises the signal it stopped on, after a clean shutdown.
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    # The server's own lines say when they happened.
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO app.main: ragstore", stderr, re.M)
    assert not psutil.pid_exists(postgres_pid) or (
        psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    ), "the embedded server stops with the last process using it"


async def test_serve_with_two_workers_shares_the_port_and_the_database(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    """`--workers 2`: the schema is migrated once, two processes answer on the port (with
    the request-header deadline, which they read from the environment), concurrent uploads
    into new collections all land consistently, and SIGTERM stops everything."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY")}
    env.update({f"RAGSTORE_{k.upper()}": str(v) for k, v in APP_SETTINGS.items()})
    env.update(
        {
            "RAGSTORE_DATA_DIR": str(tmp_path / "data"),
            "OPENAI_BASE_URL": upstream.url,
            "OPENAI_API_KEY": SERVER_KEY,
            "RAGSTORE_REQUEST_HEADER_TIMEOUT_SECONDS": "1",
        }
    )
    # Started once, and waited for in a thread below.
    server = subprocess.Popen(  # noqa: ASYNC220
        [RAGSTORE, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(_wait_for_health, f"{url}/api/health", server)
        workers = [
            child
            for child in psutil.Process(server.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answers = await asyncio.gather(
                *(upload(client, long_text(), f"{n}.txt", session_id=f"s{n % 3}") for n in range(6))
            )
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            slow.settimeout(10)
            deadline_answer = slow.recv(200)
        embedded = EmbeddedPostgres(tmp_path / "data")
        engine = create_async_engine(await asyncio.to_thread(embedded.start))
        async with engine.connect() as connection:
            broken = await settled_violations(connection)
            partitions = await connection.scalar(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'chunks'::regclass")
            )
        await engine.dispose()
        await asyncio.to_thread(embedded.stop)
        postgres_pid = int((tmp_path / "data" / "pgdata" / "postmaster.pid").read_text().split()[0])
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)

    assert len(workers) == 2
    assert [answer.status_code for answer in answers] == [200] * 6, answers[0].text
    assert broken == {}
    assert partitions == 3
    assert deadline_answer.startswith(b"HTTP/1.1 408")
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert not any(worker.is_running() for worker in workers)
    assert not psutil.pid_exists(postgres_pid) or (
        psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    ), "the embedded server stops with the last process using it"

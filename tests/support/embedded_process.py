"""A separate process that uses the embedded server, so tests can kill it.

    python -m tests.support.embedded_process DATA_DIR "SQL" [--hold]

Starts (or joins) the embedded PostgreSQL in DATA_DIR, runs SQL in the
ragstore database, prints `pid=<postmaster pid>` and the psql output, then
either exits normally (leaving the server) or, with --hold, waits to be killed.
"""

import sys
import time
from pathlib import Path

from app.db.embedded import EmbeddedPostgres


def main() -> None:
    data_dir, sql = Path(sys.argv[1]), sys.argv[2]
    server = EmbeddedPostgres(data_dir)
    server.start()
    print(f"pid={server.server_pid}", flush=True)
    print(server.psql(f"\\c ragstore\n{sql}"), flush=True)
    if "--hold" in sys.argv:
        print("holding", flush=True)
        time.sleep(600)
    server.stop()


if __name__ == "__main__":
    main()

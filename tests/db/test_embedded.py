"""The embedded PostgreSQL across restarts, killed owners and crashed servers.

Each scenario runs real processes against a real data directory.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run(data_dir: Path, sql: str) -> tuple[int, str]:
    """Use the server from a fresh process that exits normally."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.embedded_process", str(data_dir), sql],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    return _server_pid(result.stdout), result.stdout


def start_and_hold(data_dir: Path, sql: str) -> tuple[subprocess.Popen[str], int]:
    """Use the server from a process that stays until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.embedded_process", str(data_dir), sql, "--hold"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("holding"):
            break
    return process, _server_pid("".join(lines))


def _server_pid(output: str) -> int:
    match = re.search(r"pid=(\d+)", output)
    assert match, output
    return int(match.group(1))


def wait_until_gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_data_persists_across_restarts_and_the_server_stops_with_its_last_user(
    data_dir: Path,
) -> None:
    first_pid, _ = run(
        data_dir, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept');"
    )
    assert wait_until_gone(first_pid), "the last process to leave stops the server"

    second_pid, output = run(data_dir, "SELECT body FROM notes;")

    assert second_pid != first_pid
    assert "kept" in output


def test_a_server_left_by_a_killed_process_is_reused_then_stopped(data_dir: Path) -> None:
    owner, server_pid = start_and_hold(data_dir, "CREATE TABLE notes (body text);")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert psutil.pid_exists(server_pid), "pgserver leaves the server running after SIGKILL"

    reused_pid, output = run(
        data_dir, "INSERT INTO notes VALUES ('after kill'); SELECT * FROM notes;"
    )

    assert reused_pid == server_pid
    assert "after kill" in output
    assert wait_until_gone(server_pid), "the dead owner no longer keeps the server alive"


def test_a_crashed_server_is_restarted_with_its_data(data_dir: Path) -> None:
    owner, server_pid = start_and_hold(
        data_dir, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('committed');"
    )
    os.kill(server_pid, signal.SIGKILL)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert wait_until_gone(server_pid)
    assert (data_dir / "pgdata" / "postmaster.pid").exists(), "the crash left its pid file"

    new_pid, output = run(data_dir, "SELECT body FROM notes;")

    assert new_pid != server_pid
    assert "committed" in output


def test_a_pid_file_naming_an_unrelated_live_process_is_ignored(data_dir: Path) -> None:
    first_pid, _ = run(data_dir, "CREATE TABLE notes (body text);")
    assert wait_until_gone(first_pid)
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # What a crash plus pid reuse (e.g. after a container restart) leaves behind.
        pid_file.write_text(f"{stranger.pid}\n{data_dir / 'pgdata'}\n0\n5432\n/tmp\n\n0 0\nready\n")

        new_pid, output = run(data_dir, "SELECT count(*) FROM notes;")
    finally:
        stranger.kill()
        stranger.wait()

    assert new_pid != stranger.pid
    assert "(1 row)" in output


def _can_run_as_nobody() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            "",
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_run_as_nobody(),
    reason="needs root, setpriv, and a Python interpreter that user 'nobody' may execute "
    "(here it lives under /root, mode 0700)",
)
def test_a_normal_user_runs_the_server_as_itself() -> None:
    # Not under tmp_path: pytest makes that private to root.
    home = Path(tempfile.mkdtemp(prefix="ragstore-nobody-"))
    shutil.chown(home, user="nobody")
    command = [sys.executable, "-m", "tests.support.embedded_process", str(home / "data")]
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command, "SELECT 1;"],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )

    try:
        assert result.returncode == 0, result.stderr
        assert (home / "data" / "pgdata").owner() == "nobody"
    finally:
        shutil.rmtree(home, ignore_errors=True)

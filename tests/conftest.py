"""Shared test fixtures.

Real data lives in ../shared/data (see its README). Outside CI a missing folder skips the tests that need
it, with a message; in CI (CI=true) a missing dataset fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kizuna.core.parallel import SCHEDULER_ENV

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the path of ../shared/data, skipping (or failing in CI) when it is missing."""
    override = os.environ.get("KIZUNA_SHARED_DATA")
    path = Path(override) if override else SHARED_DATA
    if not path.is_dir():
        msg = f"shared data folder {path} not found (set KIZUNA_SHARED_DATA to its location)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with code {proc.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout_s} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _dask_cli() -> list[str]:
    exe = Path(sys.executable).parent / "dask"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("dask")
    if not found:
        pytest.skip("the `dask` command line is not installed")
    return [found]


@pytest.fixture(scope="session")
def dask_cluster():
    """A real `dask scheduler` and one `dask worker` (no nanny, so it runs tasks in its own process)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != SCHEDULER_ENV}
    log = subprocess.DEVNULL
    sched = subprocess.Popen(
        [*_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=log,
        stderr=log,
        env=env,
    )
    worker = None
    try:
        _wait_for_port(port, sched, 30)
        worker = subprocess.Popen(
            [*_dask_cli(), "worker", address, "--nthreads", "1", "--no-dashboard", "--no-nanny"],
            stdout=log,
            stderr=log,
            env=env,
        )
        from distributed import Client

        with Client(address, timeout=20) as client:
            client.wait_for_workers(1, timeout=30)
        yield address, worker
    finally:
        if worker is not None:
            _stop(worker)
        _stop(sched)
    assert sched.returncode is not None and (worker is None or worker.returncode is not None)

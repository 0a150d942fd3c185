"""Tests of kizuna.core.parallel: serial, local processes, a LocalCluster and a real Dask scheduler/worker."""

from __future__ import annotations

import math
import os
import socket

import pytest

from kizuna.core.parallel import SCHEDULER_ENV, run_tasks
from kizuna.errors import InputError


def _square_and_pid(x: int) -> tuple[int, int]:
    """Module-level task: returns x*x and the process that ran it."""
    return x * x, os.getpid()


def test_serial_in_order_with_progress():
    calls = []
    out = run_tasks(math.factorial, [5, 0, 10, 3], progress=lambda done, total: calls.append((done, total)))
    # 5! = 120, 0! = 1, 10! = 3628800, 3! = 6 (definition of the factorial).
    assert out == [120, 1, 3628800, 6]
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_processes_in_task_order_in_other_processes():
    calls = []
    tasks = list(range(23, -1, -1))
    out = run_tasks(
        _square_and_pid, tasks, mode="processes", n_workers=2, progress=lambda d, t: calls.append(d)
    )
    assert [v for v, _ in out] == [x * x for x in tasks]
    assert os.getpid() not in {pid for _, pid in out}
    assert sorted(calls) == list(range(1, 25))


def test_processes_task_error_propagates():
    # math.sqrt of a negative number raises ValueError ("math domain error", Python docs).
    with pytest.raises(ValueError):
        run_tasks(math.sqrt, [4.0, -1.0, 9.0], mode="processes", n_workers=2)


def test_bad_arguments():
    with pytest.raises(InputError, match="threads"):
        run_tasks(abs, [1], mode="threads")
    with pytest.raises(InputError, match="n_workers"):
        run_tasks(abs, [1], n_workers=0)
    assert run_tasks(abs, [], mode="processes") == []


def test_dask_real_scheduler_and_worker(dask_cluster, monkeypatch):
    address, worker = dask_cluster
    calls = []
    # A lambda is shipped by value (cloudpickle), so the worker does not need to import this test module.
    out = run_tasks(
        lambda x: (x * x, os.getpid()),
        list(range(20)),
        mode="dask",
        scheduler=address,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert [v for v, _ in out] == [x * x for x in range(20)]
    assert {pid for _, pid in out} == {worker.pid}  # ran in the external `dask worker` process
    assert calls[-1] == (20, 20) and len(calls) == 20
    # The same cluster through the KIZUNA_SCHEDULER environment variable.
    monkeypatch.setenv(SCHEDULER_ENV, address)
    assert run_tasks(math.factorial, [6, 7], mode="dask") == [720, 5040]  # 6! and 7!


def test_dask_local_cluster(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)

    def task(x):
        import numba

        return x + 1, os.getpid(), numba.get_num_threads()

    out = run_tasks(task, [1, 2, 3, 4], mode="dask", n_workers=2)
    assert [v for v, _, _ in out] == [2, 3, 4, 5]
    assert os.getpid() not in {pid for _, pid, _ in out}
    # one task per core: numba's parallel loops run on one thread in each worker
    assert {n for _, _, n in out} == {1}


def test_dask_unreachable_scheduler_names_address(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free now, and nothing will listen there
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(InputError, match=address):
        run_tasks(abs, [1], mode="dask", scheduler=address, connect_timeout_s=2)

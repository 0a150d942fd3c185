"""The one executor for many independent tasks: serially, on local processes, or on a Dask cluster.

Fields split their work into independent tasks (Monte Carlo runs, time windows, map tiles,
station-days) and call :func:`run_tasks`; the same code then runs on a laptop or a cluster::

    results = run_tasks(simulate_one, seeds, mode="dask", scheduler="tcp://head:8786")

``func`` must be picklable (a module-level function, or anything cloudpickle handles for Dask) and, for
a remote cluster, importable by the workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

from kizuna.errors import InputError

__all__ = ["run_tasks", "MODES", "SCHEDULER_ENV"]

MODES = ("serial", "processes", "dask")

# Environment variable naming a Dask scheduler address, used when no scheduler is given.
SCHEDULER_ENV = "KIZUNA_SCHEDULER"


def _default_workers() -> int:
    """Return the number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_serial(func: Callable[[Any], Any], tasks: Sequence[Any], progress: Callable | None) -> list[Any]:
    """Run tasks one after another in this process."""
    results = []
    for i, task in enumerate(tasks):
        results.append(func(task))
        if progress is not None:
            progress(i + 1, len(tasks))
    return results


def _run_processes(
    func: Callable[[Any], Any], tasks: Sequence[Any], n_workers: int, progress: Callable | None
) -> list[Any]:
    """Run tasks on a pool of local worker processes (forkserver start where available)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    results: list[Any] = [None] * len(tasks)
    with cf.ProcessPoolExecutor(max_workers=min(n_workers, len(tasks)), mp_context=ctx) as pool:
        futures = {pool.submit(func, task): i for i, task in enumerate(tasks)}
        try:
            for done, fut in enumerate(cf.as_completed(futures), start=1):
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress(done, len(tasks))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results


class _OneNumbaThread:
    """Callable wrapper that runs func with numba's parallel loops limited to one thread."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __call__(self, task: Any) -> Any:
        import numba

        numba.set_num_threads(1)  # per calling thread; the process's thread pool is left as it is
        return self.func(task)


def _connect(address: str, timeout_s: float) -> Any:
    """Return a distributed.Client connected to ``address``, or raise InputError naming it."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"Dask scheduler {address!r}: cannot connect within {timeout_s:g} s ({exc}); "
            "expected a running scheduler such as tcp://HOST:8786"
        ) from exc


def _run_dask(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    scheduler: str | None,
    n_workers: int,
    progress: Callable | None,
    connect_timeout_s: float,
) -> list[Any]:
    """Run tasks on a Dask cluster: the given scheduler, $KIZUNA_SCHEDULER, or a temporary LocalCluster."""
    from distributed import LocalCluster, as_completed

    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    cluster = None
    if address:
        client = _connect(address, connect_timeout_s)
    else:
        cluster = LocalCluster(
            n_workers=min(n_workers, len(tasks)),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never clash with a running cluster
        )
        # one task per core: as dask holds OpenMP/BLAS to one thread in its workers, hold numba's
        # parallel loops to one thread too, so that the workers do not oversubscribe the cores
        func = _OneNumbaThread(func)
        client = None
    try:
        if client is None:
            client = _connect(cluster.scheduler_address, connect_timeout_s)
        futures = client.map(func, list(tasks), pure=False)
        try:
            if progress is not None:
                for done, _ in enumerate(as_completed(futures, loop=client.loop), start=1):
                    progress(done, len(tasks))
            return client.gather(futures)
        finally:
            client.cancel(futures)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    mode: str = "serial",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    connect_timeout_s: float = 10.0,
) -> list[Any]:
    """Return ``[func(t) for t in tasks]`` in task order, run serially, on local processes or on Dask.

    ``mode="dask"`` uses the scheduler address given (e.g. ``tcp://127.0.0.1:8786``), else the
    ``KIZUNA_SCHEDULER`` environment variable, else a temporary local cluster of ``n_workers``
    single-threaded processes. ``progress(completed, total)`` is called in this process as tasks finish.
    A task's exception is raised here unchanged.
    """
    if mode not in MODES:
        raise InputError(f"parallel mode {mode!r}: expected one of {', '.join(MODES)}")
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise InputError(f"n_workers {n_workers!r}: expected a positive integer")
    if not callable(func):
        raise InputError(f"task function {func!r}: expected a callable")
    tasks = list(tasks)
    if not tasks:
        return []
    workers = n_workers or _default_workers()
    if mode == "serial":
        return _run_serial(func, tasks, progress)
    if mode == "processes":
        return _run_processes(func, tasks, workers, progress)
    return _run_dask(func, tasks, scheduler, workers, progress, connect_timeout_s)

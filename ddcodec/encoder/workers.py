"""Worker processes for encoding: a photo's tiles (map_in_processes), or whole images (ddcodec/parallel.py).

Each tile of a tiled image (format/tiles.py) is an independent fit, and on a CPU small kernels leave cores idle
between them, so `jobs` processes of a few torch threads each finish a photo sooner than one process using every
core (benchmarks/results/photo-12mp.md measures it). Workers are spawned (no fork of a parent whose torch threads
already exist), get each task's arrays and settings pickled, and send their progress through a queue to the
parent's Progress (training/progress.Relayed), which draws one bar for the whole photo.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from ddcodec.errors import InputError
from ddcodec.training.progress import Progress, Relayed

# How an encode's tasks run: runner(fn, tasks, progress) yields (index, fn(task, progress-or-None)) as each finishes
# (map_in_processes here; ddcodec.distributed.tiles_on_ray on a Ray cluster).
Runner = Callable[[Callable[[Any, Progress | None], Any], Sequence[Any], Progress | None], Iterator[tuple[int, Any]]]

POLL_SECONDS = 0.2  # how often the parent relays the workers' progress while it waits for a task

_relay: Relayed | None = None  # in a worker: its progress, sent to the parent (None without a bar or log)


def default_threads(jobs: int) -> int:
    """torch threads per worker: the cores shared out among the jobs, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _start_worker(threads: int, queue: Any) -> None:
    """A worker's start: torch's CPU threads, and its progress sent to the parent's (where there is one)."""
    global _relay
    import torch

    torch.set_num_threads(threads)
    _relay = Relayed(queue) if queue is not None else None


def _run(fn: Callable[[Any, Progress | None], Any], task: Any) -> Any:
    return fn(task, _relay)


@contextmanager
def worker_pool(jobs: int, threads: int | None = None, queue: Any = None) -> Iterator[ProcessPoolExecutor]:
    """`jobs` spawned worker processes of `threads` torch threads each (default: the cores shared out), whose
    progress goes to `queue` (for map_in_processes); stopped at once when the block ends, tasks running or not
    (ProcessPoolExecutor.shutdown would wait for them). A worker that dies (the system out of memory, most likely)
    raises an InputError naming the jobs, where a multiprocessing.Pool would wait for its task forever."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, context, _start_worker, (threads or default_threads(jobs), queue))
    try:
        yield pool
    except BrokenProcessPool:
        raise InputError(f"a worker process died, most likely for want of memory: try fewer jobs than {jobs}") from None
    finally:
        if hasattr(pool, "kill_workers"):  # Python 3.14
            pool.kill_workers()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def map_in_processes(fn: Callable[[Any, Progress | None], Any], tasks: Sequence[Any], progress: Progress | None = None,
                     *, jobs: int, threads: int | None = None) -> Iterator[tuple[int, Any]]:
    """fn(task, progress) for each task in a worker_pool of `jobs` processes; yields (index of the task, its result)
    as each finishes. `fn` must be a module-level function and the tasks picklable. The workers' progress (stages,
    work, log lines) goes to `progress`. A task's exception is raised here; on it, or on an interrupt, the workers
    are stopped at once."""
    queue = multiprocessing.get_context("spawn").SimpleQueue() if progress is not None else None
    with worker_pool(min(jobs, len(tasks)) or 1, threads or default_threads(jobs), queue) as pool:
        pending = {pool.submit(_run, fn, task): k for k, task in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, POLL_SECONDS, FIRST_COMPLETED)
            _relay_all(queue, progress)
            for future in done:
                yield pending.pop(future), future.result()
        _relay_all(queue, progress)


def _relay_all(queue: Any, progress: Progress | None) -> None:
    """The workers' progress messages so far, passed on to `progress`."""
    while queue is not None and not queue.empty():
        progress.receive(*queue.get())

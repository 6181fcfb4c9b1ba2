"""Encoding on a Ray cluster: many images, one task per image (or per batch of same-size images on GPUs), or one
photo's tiles, one task per tile (tiles_on_ray).

Ray is an optional extra (`pip install 'ddcodec[encode,ray]'` on every node). Each task receives the image file's
bytes and returns the .ddc bytes, so the workers need no shared file system; the driver reads images only as tasks
are submitted (a bounded number in flight) and writes each .ddc as soon as its task is done. Tasks ask for a GPU when
the cluster has one, and one CPU each otherwise (Ray then gives torch one thread per task).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ddcodec.encoder.workers import Runner
from ddcodec.errors import InputError
from ddcodec.parallel import encode_task, exists, finish, read_image_bytes

IN_FLIGHT_PER_SLOT = 2  # tasks submitted per CPU (or GPU) of the cluster, so that no worker waits for the driver


def _groups(jobs: list[tuple[Path, Path]], batch: int) -> Iterator[list[tuple[Path, Path]]]:
    """The (source, output) pairs in tasks: one each, or up to `batch` images of one size per task."""
    if batch <= 1:
        yield from ([job] for job in jobs)
        return
    from PIL import Image

    buckets: dict[tuple[int, int] | None, list[tuple[Path, Path]]] = {}
    for job in jobs:
        try:
            with Image.open(job[0]) as img:
                key: tuple[int, int] | None = img.size
        except (OSError, SyntaxError):
            key = None  # unreadable: its task reports the error
        bucket = buckets.setdefault(key, [])
        bucket.append(job)
        if len(bucket) == batch or key is None:
            yield buckets.pop(key)
    yield from buckets.values()


@contextmanager
def _session(address: str | None) -> Iterator[Any]:
    """The ray module with a session: the one already initialized, or one started at `address` and shut down at the
    end; an InputError where Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise InputError("Ray is needed: pip install 'ddcodec[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def encode_on_ray(
    sources: Sequence[str | os.PathLike],
    outputs: Sequence[str | os.PathLike],
    *,
    address: str | None = None,
    skip_existing: bool = False,
    overwrite: bool = True,
    keep_going: bool = False,
    batch: int | None = None,
    **options: Any,
) -> Iterator[tuple[Path, Any]]:
    """Encode sources[i] into outputs[i] on a Ray cluster; yields (output, EncodeResult) as each file is written.

    `address` is Ray's (None: the RAY_ADDRESS variable or a new local instance; "auto": the local cluster that
    `ray start` made; "ray://head:10001": a remote one); a Ray session already initialized is used as it is.
    `skip_existing` leaves outputs that exist alone, so a rerun resumes (one that appears while its image is encoded
    too); without `overwrite`, no file is written over one that exists at that moment (`-`: standard output); with
    `keep_going`, an image's error is yielded as (output, InputError) and the others go on. `batch` images of one
    size go in one task (default 16 where the cluster has GPUs, else 1). The other options are ddcodec.encode's.
    """
    jobs = [(Path(s), Path(o)) for s, o in zip(sources, outputs) if not (skip_existing and Path(o).exists())]
    with _session(address) as ray:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        task = ray.remote(num_gpus=1, num_cpus=1)(encode_task) if gpus else ray.remote(num_cpus=1)(encode_task)
        window = IN_FLIGHT_PER_SLOT * max(gpus or int(resources.get("CPU", 1)), 1)
        options = {**options, "batch": batch or (16 if gpus else 1)}
        pending: dict[Any, list[tuple[Path, Path]]] = {}
        groups = _groups(jobs, options["batch"])
        while True:
            for group in groups:
                group = [(src, out) for src, out in group if not (skip_existing and exists(out))]
                if not group:
                    continue
                named = [(str(src), read_image_bytes(src)) for src, _ in group]
                pending[task.remote(named, options)] = group
                if len(pending) >= window:
                    break
            if not pending:
                return
            (done,), _ = ray.wait(list(pending), num_returns=1)
            for (_, out), result in zip(pending.pop(done), ray.get(done)):
                done = finish(out, result, overwrite, skip_existing, keep_going)
                if done:
                    yield done


def tiles_on_ray(address: str | None = None) -> Runner:
    """A runner for ddcodec.encode(..., runner=) that fits a photo's tiles as Ray tasks of one CPU each, on the
    device the caller chose, all submitted at once; yields (index, result) as each is done. `address` as for
    encode_on_ray; a Ray session already initialized is used as it is, one started here is shut down at the end.
    The tasks report no progress but their count."""

    def run(fn: Callable[[Any, Any], Any], tasks: Sequence[Any], progress: Any = None) -> Iterator[tuple[int, Any]]:
        with _session(address) as ray:
            remote = ray.remote(num_cpus=1)(fn)
            pending = {remote.remote(task, None): k for k, task in enumerate(tasks)}
            while pending:
                (done,), _ = ray.wait(list(pending), num_returns=1)
                yield pending.pop(done), ray.get(done)

    return run

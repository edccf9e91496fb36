"""Engines that run evaluations: this process, a pool of spawned worker processes, or a Dask
cluster. Results come back in submission order, so the search is the same whatever ran it."""
from __future__ import annotations

import torch

from .context import _WORKER_STATE, EvalContext, evaluate_mapping


def _init_worker(ctx: EvalContext) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C reaches the parent; it stops the pool
    torch.set_num_threads(1)                          # one core per worker (results do not depend on it)
    _WORKER_STATE["ctx"] = ctx


def _pool_job(job) -> tuple:
    mapping, split, tuning = job
    return evaluate_mapping(_WORKER_STATE["ctx"], mapping, split, tuning)


def _dask_job(ctx: EvalContext, mapping, split, tuning) -> tuple:
    return evaluate_mapping(ctx, tuple(mapping), split, tuning)


def connect(address: str, timeout: float = 5.0):
    """A dask.distributed Client of the scheduler at `address`; one line if it cannot be reached
    within `timeout` seconds."""
    import logging
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs the dask.distributed package (pip install distributed)") from None
    if not isinstance(address, str) or not address.strip():
        raise ValueError("scheduler address must be non-empty, e.g. tcp://host:8786")
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({first})") from None
    finally:
        for q, lv in zip(quiet, levels):
            q.setLevel(lv)


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail early (one line) when the scheduler cannot be reached; before any slow work."""
    connect(address, timeout).close()


class Engine:
    """Runs evaluations (mapping, split, tuning) -> (accuracy %, mean loss): here (workers=1), in a pool of
    worker processes, or on a Dask cluster (scheduler address). Use as a context manager."""

    def __init__(self, ctx: EvalContext, workers: int = 2, scheduler: str | None = None,
                 connect_timeout: float = 5.0):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.ctx, self.workers, self.scheduler = ctx, workers, scheduler
        self._pool = self._client = self._ctx_future = None
        if scheduler is not None:
            self._connect(scheduler, connect_timeout)
        elif workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(ctx,))

    @property
    def description(self) -> str:
        if self._client is not None:
            return f"Dask scheduler {self.scheduler} ({len(self._client.scheduler_info().get('workers', {}))} workers)"
        return f"{self.workers} worker processes" if self._pool else "this process"

    def _connect(self, address: str, timeout: float) -> None:
        self._client = connect(address, timeout)
        self._ctx_future = self._client.scatter(self.ctx, broadcast=True, hash=False)

    def run(self, jobs: list) -> list[tuple]:
        """jobs: [(mapping, split, tuning or None)] -> (accuracy %, mean loss) each, in order."""
        jobs = [(tuple(int(c) for c in m), s, t) for m, s, t in jobs]
        if not jobs:
            return []
        if self._client is not None:
            futs = [self._client.submit(_dask_job, self._ctx_future, m, s, t, pure=False) for m, s, t in jobs]
            return [(float(a), float(b)) for a, b in self._client.gather(futs)]
        if self._pool is not None:
            return [(float(a), float(b)) for a, b in self._pool.map(_pool_job, jobs)]
        return [evaluate_mapping(self.ctx, m, s, t) for m, s, t in jobs]

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            procs = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=not cancel, cancel_futures=True)
            if cancel:
                for p in procs:
                    try:
                        p.terminate()
                        p.join(3)
                        if p.is_alive():
                            p.kill()
                    except (OSError, ValueError, AttributeError, AssertionError):
                        pass
            self._pool = None
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(cancel=exc_type is not None)
        return False

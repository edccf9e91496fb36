"""Worker processes that an interrupt stops promptly, leaving no process behind.

Every pool of worker processes (the CLI's sweeps, the FPGA and ALWANN runs) should come from
here; it lives in synth/ so that synth/ and net/ can use it too.

`with worker_pool(n) as pool:` gives a concurrent.futures.ProcessPoolExecutor whose workers
ignore SIGINT (a terminal's Ctrl-C reaches the whole foreground process group; only the
parent acts on it) and turn SIGTERM into a clean exit (so an external tool a worker runs
through synth.proc.run_tool is killed with its process group, not orphaned). When the body
raises anything (KeyboardInterrupt included), every worker is terminated, then killed if it
has not exited within a few seconds, before the exception propagates.
"""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["worker_pool", "check_workers"]


def check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


def _children(pid: int) -> list[int]:
    """Child processes of `pid` (Linux /proc; an empty list elsewhere)."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()      # after "(comm)", which may hold spaces
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(name))
    return out


def _on_term(signum, frame):
    """Kill the external tools this worker runs (each leads its own process group, see
    synth.proc.run_tool), then exit at once: raising here could land in any frame."""
    for child in _children(os.getpid()):
        try:
            if os.getpgid(child) == child:
                os.killpg(child, signal.SIGKILL)
            else:
                os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    os._exit(128 + signum)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)


def _stop(pool: ProcessPoolExecutor, grace: float = 3.0) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass


@contextmanager
def worker_pool(workers: int, mp_context=None):
    """A ProcessPoolExecutor of `workers` processes (start method `mp_context`, default fork)."""
    pool = ProcessPoolExecutor(max_workers=check_workers(workers), mp_context=mp_context,
                               initializer=_worker_init)
    try:
        yield pool
    except BaseException:
        _stop(pool)
        raise
    else:
        pool.shutdown(wait=True)

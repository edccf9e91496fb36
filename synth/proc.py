"""Run an external tool (Yosys, Icarus, vvp, nextpnr) bounded by a timeout.

Every external process ecomac starts goes through `run_tool`: it runs in its own process
group, so a timeout or an interrupt (Ctrl-C) kills the tool *and* whatever it started
(a `vvp` under a driver, yowasp's workers) and leaves no orphan behind.
"""
from __future__ import annotations

import os
import signal
import subprocess

__all__ = ["ToolError", "ToolTimeout", "run_tool", "DEFAULT_TIMEOUT_S"]

# Generous enough for the 64-lane tile rows (minutes); ECOMAC_TOOL_TIMEOUT lowers it (tests).
DEFAULT_TIMEOUT_S = 3600.0


class ToolError(RuntimeError):
    """An external tool failed; the message is one line naming what failed."""


class ToolTimeout(ToolError):
    """An external tool ran past its time limit and was killed (with its process group)."""


def _default_timeout() -> float:
    v = os.environ.get("ECOMAC_TOOL_TIMEOUT")
    if v:
        try:
            t = float(v)
            if t > 0:
                return t
        except ValueError:
            pass
        raise ToolError(f"ECOMAC_TOOL_TIMEOUT must be a positive number of seconds, got {v!r}")
    return DEFAULT_TIMEOUT_S


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_tool(argv: list[str], *, what: str, timeout: float | None = None, cwd=None,
             input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run argv (text mode, output captured) in a new process group.

    what: a short name for messages ("yosys", "iverilog on user.v").
    Raises ToolTimeout after `timeout` seconds (default: ECOMAC_TOOL_TIMEOUT or 1 hour),
    killing the whole group; a KeyboardInterrupt kills the group and propagates. A non-zero
    exit is returned to the caller (the returncode), who knows how to word it.
    """
    limit = _default_timeout() if timeout is None else timeout
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True, start_new_session=True,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise ToolError(f"{what}: program {argv[0]!r} not found") from None
    try:
        out, err = proc.communicate(input=input, timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ToolTimeout(f"{what} did not finish within {limit:g} s and was stopped") from None
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)

"""Child processes that die with their caller: for tests and benchmarks that start `main.py`.

Each child gets its own process group (`start_new_session`), and leaving `spawned` (normally, on
a timeout, on an exception or on Ctrl-C) kills the whole group: the child and anything it
started. `kill_on_termination()` makes SIGTERM and SIGHUP of the caller (a `timeout` around
pytest, a closed terminal) kill every group still running before the caller exits.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

_running: set[subprocess.Popen] = set()  # groups started here and not yet killed
_lock = threading.Lock()


def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
  """`subprocess.Popen(argv, **kwargs)` in a new process group, tracked for `kill_all`.
  Prefer `spawned` or `run`, which also kill the group when the caller is done."""
  process = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
  with _lock:
    _running.add(process)
  return process


def kill_group(process: subprocess.Popen) -> None:
  """SIGKILLs `process`'s process group (whatever of it still runs) and reaps `process`."""
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):  # the whole group has exited already
    pass
  process.wait()
  with _lock:
    _running.discard(process)


def kill_all() -> None:
  """Kills the group of every process started by `popen` that is still tracked."""
  with _lock:
    running = list(_running)
  for process in running:
    kill_group(process)


def kill_on_termination() -> None:
  """On SIGTERM or SIGHUP: `kill_all()`, then exit with 128 + the signal number."""

  def handler(signum, frame):
    del frame
    kill_all()
    sys.exit(128 + signum)

  for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, handler)


@contextlib.contextmanager
def spawned(argv: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
  """`popen(argv, **kwargs)` whose process group is killed when the block is left."""
  process = popen(argv, **kwargs)
  try:
    yield process
  finally:
    kill_group(process)


def run(argv: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
  """Like `subprocess.run(argv, timeout=timeout, **kwargs)`, but on a timeout the child's whole
  process group is killed before `subprocess.TimeoutExpired` is raised."""
  with spawned(argv, **kwargs) as process:
    try:
      stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      kill_group(process)
      stdout, stderr = process.communicate()
      raise subprocess.TimeoutExpired(process.args, timeout, stdout, stderr) from None
  return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

"""Stop requests: SIGTERM and SIGINT end a run at the next step boundary, with a checkpoint.

A preemptible or shared machine sends SIGTERM before it takes the job away; Ctrl-C sends SIGINT.
Either only sets a flag that the training loop reads between dispatches, so the step in flight
finishes, a checkpoint is saved and the process exits 0 (docs/SCALING.md).
"""

import signal
import threading
from typing import Any, Optional

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils


class StopSignals:
  """SIGTERM and SIGINT ask the loop to stop at the next dispatch boundary, with a checkpoint.

  The handler only records the signal; a second one aborts without a checkpoint. With
  `second_kills` (what `main.py` uses) the first signal sets the kernel's default action, so the
  second ends the process at once, whatever Python is doing: a KeyboardInterrupt raised by a
  Python handler can be swallowed (in a garbage-collection callback, in a library's thread) or
  wait for a long C call to return. Without it the previous handler comes back (SIGINT:
  KeyboardInterrupt, as an interactive session expects). A run aborted either way resumes from
  its last complete checkpoint: Orbax never lists a half-written one.
  Handlers can be installed from the main thread only; elsewhere signals keep their behaviour.
  """
  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, second_kills: bool = False):
    self.received: Optional[str] = None
    self.second_kills = second_kills
    self._previous: dict[int, Any] = {}
    self._single_process: Optional[bool] = None

  def __enter__(self) -> 'StopSignals':
    if threading.current_thread() is threading.main_thread():
      for signum in self.SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    self._previous = {}

  def _handle(self, signum: int, frame) -> None:
    del frame
    self.received = signal.Signals(signum).name
    previous = self._previous.get(signum)
    signal.signal(signum, signal.SIG_DFL if previous is None or self.second_kills else previous)
    logging.warning('%s: stopping at the next step boundary with a checkpoint (send it again to '
                    'abort at once without one).', self.received)

  def requested(self, collective: bool = False) -> bool:
    """Whether to stop now. One process: whether a signal came. Several: only at `collective`
    points (every process must ask at the same step), whether one came to any process."""
    if self._single_process is None:  # asked per dispatch: keep it to an attribute read
      self._single_process = jax.process_count() == 1
    if self._single_process:
      return self.received is not None
    if not collective:
      return False
    flags = multihost_utils.process_allgather(np.int32(self.received is not None))
    return bool(np.any(flags))

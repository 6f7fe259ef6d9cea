"""What a run tells while it runs: TensorBoard scalars and the console progress line with ETA.

Neither needs TensorFlow, so a run on a JAX image without it (many GPU images) starts, logs and
writes its event files like any other; only `dataset.source='tfds'` needs TensorFlow Datasets.

The writer (`create_writer`): each scalar is logged (`[step] name=value, ...`, names sorted, as
clu's logging writer did) and, on process 0, appended to a TensorBoard event file written with
the `tensorboard` package's own record format and protos
(`tensorboard.summary.writer.record_writer`, `tensorboard.compat.proto.event_pb2`), flushed at
every write so that a killed run loses nothing. Why these and not a ready writer:
clu's and flax's writers import TensorFlow when imported; tensorboard's `EventFileWriter` (under
`torch.utils.tensorboard` and `tensorboard.summary.Writer`) opens files through
`tensorboard.compat.tf`, which imports TensorFlow wherever it is installed (4 s at each start);
tensorboardX would be one more dependency for the same 20 lines. `tensorboard` is already a
dependency (the report reads these files) and is on the GPU images we run on.

The progress line (`Progress`): a line when the train step starts compiling and when it is
compiled (seconds), the first step's time with the epoch and run it predicts (on a CPU, a warning
when the run would take more than `CPU_WARNING_HOURS`, naming `config.expected_gpu_hours`), then
every `progress_every_secs` the step, steps/s and an ETA that counts the evaluations and
checkpoints still due at their last measured duration.
"""

import contextlib
import importlib.util
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional

from absl import logging

CPU_WARNING_HOURS = 3.0  # a run estimated longer than this on a CPU gets a warning
_file_ids = itertools.count()  # unique event file names within one process


def missing_libraries() -> Optional[str]:
  """One line naming the optional libraries that are not installed and what each costs, or
  None when all are there."""
  costs = {
      'tensorflow': "dataset.source='tfds'",
      'tensorflow_datasets': "dataset.source='tfds'",
      'tensorboard': 'TensorBoard event files (the log still has every scalar)',
  }
  missing = [name for name in costs if not _installed(name)]
  if not missing:
    return None
  lost = sorted({costs[name] for name in missing})
  return (f"Not installed: {', '.join(missing)}; unavailable without them: {'; '.join(lost)}. "
          'Everything else works.')


def _installed(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):  # a blocked import, or a module without a spec
    return False


class EventWriter:
  """Appends scalar events to a new TensorBoard event file in `logdir` (created if absent).

  One file per writer, named as TensorFlow names them
  (`events.out.tfevents.<seconds>.<host>.<pid>.<n>`), so TensorBoard and `jaxcls.report` read a
  resumed run's sessions as one series. Raises OSError where `logdir` cannot be written.
  """

  def __init__(self, logdir: str):
    from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.summary.writer import record_writer  # pylint: disable=g-import-not-at-top

    self._event_pb2 = event_pb2
    os.makedirs(logdir, exist_ok=True)
    name = (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.'
            f'{next(_file_ids)}')
    self.path = os.path.join(logdir, name)
    file = open(self.path, 'xb')  # pylint: disable=consider-using-with  # 'x': never via a link
    self._records = record_writer.RecordWriter(file)
    self._write(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event) -> None:
    self._records.write(event.SerializeToString())
    self._records.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    event = self._event_pb2.Event(wall_time=time.time(), step=int(step))
    for tag, value in scalars.items():
      event.summary.value.add(tag=tag, simple_value=float(value))
    self._write(event)

  def flush(self) -> None:
    self._records.flush()

  def close(self) -> None:
    if not self._records.closed:
      self._records.close()


class Writer:
  """Scalars to the log and, where given, to an `EventWriter`: `write_scalars(step, {...})`,
  `flush()`, `close()` (the calls the loop makes of clu's writers)."""

  def __init__(self, events: Optional[EventWriter] = None):
    self.events = events

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    logging.info('[%d] %s', step, ', '.join(f'{k}={float(v):.6g}'
                                            for k, v in sorted(scalars.items())))
    if self.events is not None:
      self.events.write_scalars(step, scalars)

  def flush(self) -> None:
    if self.events is not None:
      self.events.flush()

  def close(self) -> None:
    if self.events is not None:
      self.events.close()


def create_writer(workdir: str, is_main: bool) -> Writer:
  """The run's writer: the log everywhere, and event files in `workdir` on process 0.

  Says in one line which optional libraries are missing (`missing_libraries`).
  """
  notice = missing_libraries()
  if notice and is_main:
    logging.info('%s', notice)
  if not is_main or not _installed('tensorboard'):
    return Writer()
  return Writer(EventWriter(workdir))


def format_duration(seconds: float) -> str:
  """`42s`, `3m 20s`, `2h 05m`, `3d 4h`: coarse enough to read at a glance."""
  seconds = max(0, round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f'{minutes}m {seconds:02d}s'
  hours, minutes = divmod(minutes, 60)
  if hours < 48:
    return f'{hours}h {minutes:02d}m'
  days, hours = divmod(hours, 24)
  return f'{days}d {hours}h'


def points_left(every: int, step: int, num_steps: int) -> int:
  """How many of the loop's stops at multiples of `every` (0: none) or at `num_steps` lie in
  `[step, num_steps]`: the evaluations (or checkpoints) still due when the steps up to `step`
  have run but that step's own evaluation has not."""
  step = max(step, 1)
  if step > num_steps:
    return 0
  multiples = num_steps // every - (step - 1) // every if every else 0
  return multiples + (0 if every and num_steps % every == 0 else 1)


class Progress:
  """The console progress line and its ETA (see the module docstring).

  The loop calls it with the step and state at every stop (the steps before it dispatched, that
  step's evaluation and checkpoint not yet done), times its evaluations and checkpoints with
  `timed(kind)`, and wraps each train function with `first_call` so that the compile and the
  first step are timed. Training time is wall time less the timed work and the first calls;
  the ETA is the steps left at the training rate plus, for each kind in `cadence`, the
  stops still due times that kind's last duration.

  Args:
    num_steps: steps of the whole run.
    steps_per_epoch: steps of one epoch.
    start_step: the step this session starts at (resumed runs start past 0).
    every_secs: seconds between progress lines (the last step always gets one).
    cadence: kind -> every how many steps it runs (0: only at the end), e.g.
      `{'eval': 390, 'checkpoint': 1000}`.
    writer: where `steps_per_sec` goes, or None.
    expected_gpu_hours: the config's estimate for the whole run on one GPU, named by the CPU
      warning; None if the config gives none.
    platform: the device platform ('cpu', 'gpu', 'tpu'); default JAX's.
    clock: seconds, monotonic (a fake one in tests).
  """

  def __init__(self, num_steps: int, steps_per_epoch: int, *, start_step: int = 0,
               every_secs: float = 10.0, cadence: Optional[Mapping[str, int]] = None,
               writer: Optional[Writer] = None, expected_gpu_hours: Optional[float] = None,
               platform: Optional[str] = None, clock: Callable[[], float] = time.monotonic):
    if platform is None:
      import jax  # pylint: disable=g-import-not-at-top
      platform = jax.default_backend()
    self.num_steps, self.steps_per_epoch = num_steps, steps_per_epoch
    self.every_secs, self.cadence = every_secs, dict(cadence or {})
    self.writer, self.expected_gpu_hours, self.platform = writer, expected_gpu_hours, platform
    self._clock = clock
    self._start, self._start_step = clock(), start_step
    self._excluded_s, self._excluded_steps = 0.0, 0  # timed work and first calls
    self._last: dict[str, float] = {}  # kind -> its last duration (s)
    self._first_step_s: Optional[float] = None  # per step, from the first call
    self._last_line: Optional[float] = None

  # --- What the loop reports.

  @contextlib.contextmanager
  def timed(self, kind: str) -> Iterator[None]:
    """Times the block as work of `kind` (left out of training time; its duration is what
    each later `kind` in `cadence` is expected to take)."""
    start = self._clock()
    try:
      yield
    finally:
      self._last[kind] = self._clock() - start
      self._excluded_s += self._last[kind]

  def first_call(self, fn: Callable[..., Any], steps_per_call: int) -> Callable[..., Any]:
    """`fn` (a jitted train function running `steps_per_call` steps), whose first call logs its
    compilation and waits for its result to time the first step(s)."""
    called = False

    def wrapped(*args, **kwargs):
      nonlocal called
      if called:
        return fn(*args, **kwargs)
      called = True
      import jax  # pylint: disable=g-import-not-at-top
      logging.info('Compiling the train step (%d step%s per call)...', steps_per_call,
                   '' if steps_per_call == 1 else 's')
      start = self._clock()
      out = fn(*args, **kwargs)  # jit compiles before it dispatches
      compiled = self._clock()
      logging.info('Compiled in %.1f s.', compiled - start)
      jax.block_until_ready(out)
      self.first_steps_done(compiled - start, self._clock() - compiled, steps_per_call)
      return out

    return wrapped

  def first_steps_done(self, compile_s: float, run_s: float, steps: int) -> None:
    """Logs the first call's step time and what it predicts (the first call only); the call is
    left out of the training rate."""
    self._excluded_s += compile_s + run_s
    self._excluded_steps += steps
    if self._first_step_s is not None:
      return
    self._first_step_s = run_s / steps
    epoch_s = self._first_step_s * self.steps_per_epoch
    run_left_s = self._first_step_s * (self.num_steps - self._start_step)
    logging.info('First step: %.2f s; at that pace an epoch takes %s and the %s steps left %s '
                 '(evaluations and checkpoints apart).', self._first_step_s,
                 format_duration(epoch_s), f'{self.num_steps - self._start_step:,}',
                 format_duration(run_left_s))
    warning = self.cpu_warning(run_left_s)
    if warning:
      logging.warning('%s', warning)
    self._last_line = self._clock()

  def cpu_warning(self, run_s: float) -> Optional[str]:
    """The warning for a run estimated at `run_s` seconds, or None (not a CPU, or short)."""
    if self.platform != 'cpu' or run_s < CPU_WARNING_HOURS * 3600:
      return None
    gpu = ('' if self.expected_gpu_hours is None else
           f'; the config expects about {self.expected_gpu_hours:g} h on one GPU '
           '(config.expected_gpu_hours)')
    return (f'On this CPU the run would take about {format_duration(run_s)}{gpu}. Stop it with '
            'Ctrl-C (it saves a checkpoint) and run it on a GPU: docs/GPU.md.')

  def __call__(self, step: int, wait_for: Any = None) -> Optional[str]:
    """At a stop after `step`: the progress line when one is due (also logged), else None.

    `wait_for` (the state after `step`) is waited for before a line is timed, so that the rate
    counts finished steps, not merely dispatched ones; the loop syncs at each stop anyway.
    """
    if self._last_line is None:
      self._last_line = self._start
    if step < self.num_steps and self._clock() - self._last_line < self.every_secs:
      return None
    if wait_for is not None:
      import jax  # pylint: disable=g-import-not-at-top
      jax.block_until_ready(wait_for)
    now = self._last_line = self._clock()
    rate = self.steps_per_sec(step, now)
    line = self.line(step, rate)
    logging.info('%s', line)
    if self.writer is not None and rate:
      self.writer.write_scalars(step, {'steps_per_sec': rate})
    return line

  # --- The arithmetic.

  def steps_per_sec(self, step: int, now: float) -> Optional[float]:
    """Training steps per second since the start of the session, the timed work and first
    calls left out; before any such step, the first step's rate; None before that."""
    steps = step - self._start_step - self._excluded_steps
    seconds = now - self._start - self._excluded_s
    if steps > 0 and seconds > 0:
      return steps / seconds
    return 1 / self._first_step_s if self._first_step_s else None

  def eta(self, step: int, rate: Optional[float]) -> tuple[Optional[float], dict[str, float],
                                                           list[str]]:
    """`(seconds left, {part: seconds}, [kinds due but not yet timed])` at a stop after `step`;
    seconds left is None without a training rate."""
    parts = {}
    if rate:
      parts['train'] = (self.num_steps - step) / rate
    untimed = []
    for kind, every in self.cadence.items():
      due = points_left(every, step, self.num_steps)
      if not due:
        continue
      if kind in self._last:
        parts[f"{due} {kind}{'s' if due > 1 else ''}"] = due * self._last[kind]
      else:
        untimed.append(kind)
    total = sum(parts.values()) if rate else None
    return total, parts, untimed

  def line(self, step: int, rate: Optional[float]) -> str:
    """`step 40/78 (51.3%, epoch 2.1), 12.3 steps/s, ETA 3m 20s (train 2m 50s, 4 evals 20s)`."""
    head = (f'step {step:,}/{self.num_steps:,} ({100 * step / self.num_steps:.1f}%, epoch '
            f'{step / self.steps_per_epoch:.1f})')
    total, parts, untimed = self.eta(step, rate)
    if total is None:
      return head + ', ETA unknown (no step timed yet)'
    detail = ', '.join(f'{k} {format_duration(v)}' for k, v in parts.items())
    if untimed:
      detail += ', ' + ', '.join(f'{k} not yet timed' for k in untimed)
    return f'{head}, {rate:.3g} steps/s, ETA {format_duration(total)} ({detail})'

r"""Training-loop overhead: the whole loop's images/s over the bare jitted step's.

    python benchmarks/loop_overhead.py --config configs/quickstart.py [--repeats 3]

Runs `jaxcls.train.train_and_evaluate` itself in a temporary workdir (data gathering,
augmentation, metrics, logging, progress reports and checkpoints at the config's cadence) and
times it against the same jitted train step called one step per call, back to back, from the
same initial state on the same batches (the loop's own permutations). Prints one JSON line with
`ratio` = loop images/s / bare images/s and its components.

The bare steps run in bursts interleaved with the loop: whenever the loop stops to evaluate
(its pending steps done), the bare step catches up with it, so each epoch of the loop and of
the bare step runs under the same background load, which on a shared machine changes over
minutes. The bursts are paused loop time and are not counted in it.

Compilation and evaluation are not loop overhead either: the loop's clock starts when its first
train call returns (compiled), and every later trace, lowering and compile (JAX's
`jax.monitoring` compile events: a second chunk size, the logged learning rate's ops) and each
evaluation are subtracted. The clock stops where the final evaluation starts, all steps, logs
and periodic checkpoints done; the end of the run (final evaluation, final checkpoint and its
writes, results.json) is reported apart as `end_of_run_s`.

"""

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
from jax import monitoring  # pylint: disable=g-import-not-at-top

from benchmarks import common  # pylint: disable=g-import-not-at-top
from jaxcls import checkpoint, train  # pylint: disable=g-import-not-at-top

_MAKE_TRAIN_FN = train.make_train_fn  # the real one, also while the loop's is wrapped

# What JAX reports through `jax.monitoring` for every jit it traces, lowers and compiles.
_COMPILE_EVENTS = ('/jax/core/compile/jaxpr_trace_duration',
                   '/jax/core/compile/jaxpr_to_mlir_module_duration',
                   '/jax/core/compile/backend_compile_duration')


@dataclasses.dataclass
class _Probe:
  """What the instrumented loop saw, and the bare step that keeps pace with it."""
  start: Optional[float] = None  # the first train call returned (compiled): the clock starts
  # (start, end, loop steps so far) of each pause (bare burst + evaluation): not loop time.
  pauses: list = dataclasses.field(default_factory=list)
  eval_s: float = 0.0
  compiles: list = dataclasses.field(default_factory=list)  # (end wall time, seconds)
  checkpoint_s: float = 0.0  # the synchronous part of saves
  loop_steps: int = 0  # steps the loop has dispatched
  # The bare side: make_train_fn's arguments, the loop's data and permutations, its own state.
  make_args: Any = None
  data: Any = None
  perms: dict = dataclasses.field(default_factory=dict)  # epoch0 -> permutations
  bare_fn: Any = None
  bare_state: Any = None
  bare_steps: int = 0
  bare_s: float = 0.0

  def on_duration(self, event: str, duration_secs: float, **_) -> None:
    if event in _COMPILE_EVENTS:
      self.compiles.append((time.perf_counter(), duration_secs))

  def paused(self, t: float) -> bool:
    return any(a <= t <= b for a, b, _ in self.pauses)

  def compile_s(self) -> float:
    return sum(d for _, d in self.compiles)

  def loop_compile_s(self, end: float) -> float:
    """Compiles in the loop's own time (outside evaluations and bare bursts) before `end`."""
    return sum(d for t, d in self.compiles
               if self.start < t < end and not self.paused(t))

  def catch_up(self) -> float:
    """Runs the bare step up to the loop's step count: a timed burst, synced at its end.
    Returns its wall seconds, first compile included."""
    begin = time.perf_counter()
    if self.bare_fn is None:
      args, kwargs = self.make_args
      self.bare_fn = _MAKE_TRAIN_FN(*args, **{**kwargs, 'num_steps': 1})
      images, labels = self.data
      self.bare_fn.lower(self.bare_state, images, labels, self.perms[0], 0).compile()
    steps_per_epoch = self.make_args[1]['steps_per_epoch']
    images, labels = self.data
    jax.block_until_ready(self.bare_state)
    start = time.perf_counter()
    state = self.bare_state
    for step in range(self.bare_steps, self.loop_steps):
      epoch0 = step // steps_per_epoch
      state, _ = self.bare_fn(state, images, labels, self.perms[epoch0], epoch0)
    self.bare_state = jax.block_until_ready(state)
    self.bare_s += time.perf_counter() - start
    self.bare_steps = self.loop_steps
    return time.perf_counter() - begin


@contextlib.contextmanager
def _instrumented(probe: _Probe):
  """Wraps train.make_train_fn, train.make_eval_fn and Checkpoints.save, and listens to JAX's
  compile events, for one run."""
  make_train_fn, make_eval_fn = train.make_train_fn, train.make_eval_fn
  save = checkpoint.Checkpoints.save

  def timed_make_train_fn(*args, **kwargs):
    fn = make_train_fn(*args, **kwargs)
    if probe.make_args is None:
      probe.make_args = (args, kwargs)
    num_steps = kwargs.get('num_steps', 1)

    def train_fn(state, images, labels, perms, epoch0):
      if probe.bare_state is None:
        probe.bare_state = jax.tree.map(jnp.copy, state)
        probe.data = (images, labels)
      probe.perms.setdefault(epoch0, perms)
      out = fn(state, images, labels, perms, epoch0)
      probe.loop_steps += num_steps
      if probe.start is None:
        probe.start = time.perf_counter()
      return out

    return train_fn

  def timed_make_eval_fn(*args, **kwargs):
    fn = make_eval_fn(*args, **kwargs)
    batch_size = kwargs['batch_size']
    pause_start, burst_s = None, 0.0

    def eval_fn(state, images, labels, i):
      nonlocal pause_start, burst_s
      if i == 0:
        jax.block_until_ready(state)  # the pending training steps are the loop's time
        pause_start = time.perf_counter()
        burst_s = probe.catch_up()
      out = fn(state, images, labels, i)
      if i == labels.shape[0] // batch_size - 1:
        jax.block_until_ready(out)
        end = time.perf_counter()
        probe.pauses.append((pause_start, end, probe.loop_steps))
        probe.eval_s += end - pause_start - burst_s
      return out

    return eval_fn

  def timed_save(self, *args, **kwargs):
    t = time.perf_counter()
    try:
      return save(self, *args, **kwargs)
    finally:
      probe.checkpoint_s += time.perf_counter() - t

  train.make_train_fn, train.make_eval_fn = timed_make_train_fn, timed_make_eval_fn
  checkpoint.Checkpoints.save = timed_save
  monitoring.register_event_duration_secs_listener(probe.on_duration)
  try:
    yield probe
  finally:
    train.make_train_fn, train.make_eval_fn = make_train_fn, make_eval_fn
    checkpoint.Checkpoints.save = save
    monitoring.unregister_event_duration_listener(probe.on_duration)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """One instrumented `train_and_evaluate` with its interleaved bare step; the timings.

  The loop's time ends where its final evaluation starts: every step, its logging and the
  periodic checkpoints are done. What follows (the evaluation, the final checkpoint and the wait
  for its writes, results.json) is the end of the run, reported as `end_of_run_s`.
  """
  with _instrumented(_Probe()) as probe:
    state = train.train_and_evaluate(config, workdir)
    jax.block_until_ready(state)
    returned = time.perf_counter()
  if probe.start is None:
    raise RuntimeError(f'{workdir} held a finished run: the loop ran no step')
  steps = int(state.step)
  probe.catch_up()  # steps after the last evaluation, if any
  final = next(((a, b) for a, b, n in probe.pauses if n == steps), (returned, returned))
  paused = sum(b - a for a, b, _ in probe.pauses if b <= final[0])
  compile_s = probe.loop_compile_s(final[0])
  loop_s = final[0] - probe.start - paused - compile_s
  return {'ratio': probe.bare_s / loop_s, 'loop_s': loop_s, 'bare_s': probe.bare_s,
          'checkpoint_s': probe.checkpoint_s, 'eval_s': probe.eval_s,
          'end_of_run_s': returned - final[1], 'compile_s': probe.compile_s(),
          'loop_compile_s': compile_s, 'steps': steps, 'bursts': len(probe.pauses)}


def measure(config: ml_collections.ConfigDict, *, name: Optional[str] = None,
            repeats: int = 1, workdir: Optional[str] = None) -> dict[str, Any]:
  """Loop vs bare step for `config`, `repeats` runs; the median run's figures."""
  runs = []
  for r in range(repeats):
    with tempfile.TemporaryDirectory(prefix='loop_overhead_') as tmp:
      runs.append(run(config, os.path.join(workdir or tmp, f'run{r}')))
  ratios = [r['ratio'] for r in runs]
  median = runs[ratios.index(statistics.median_low(ratios))]  # one real run's components
  steps, batch = median['steps'], config.batch_size
  return {
      'benchmark': 'loop_overhead', 'config': name or config.model.name,
      'model': config.model.name, 'batch_size': batch, 'dtype': str(config.model.dtype),
      **median, 'ratios': ratios,
      'loop_images_per_sec': steps * batch / median['loop_s'],
      'bare_images_per_sec': steps * batch / median['bare_s'],
      'overhead_s': median['loop_s'] - median['bare_s'],
      'steps_per_dispatch': config.steps_per_dispatch,
      'log_every_steps': config.log_every_steps,
      'checkpoint_every_steps': config.checkpoint_every_steps, 'repeats': repeats,
      **common.describe(),
  }


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  common.add_common_flags(parser)
  parser.add_argument('--repeats', type=int, default=1,
                      help='runs to make; the median ratio is reported')
  parser.add_argument('--workdir', help='keep the runs here (default: a temporary directory)')
  args, overrides = common.parse(parser, argv)
  config = common.load_config(args, overrides)
  result = measure(config, name=args.config, repeats=args.repeats, workdir=args.workdir)
  return common.emit(result, 'loop_overhead', args, argv)


if __name__ == '__main__':
  common.cli(main)

r"""Training-loop overhead: the whole loop's images/s over the bare jitted step's.

    python benchmarks/loop_overhead.py --config configs/quickstart.py [--repeats 3]

Runs `jaxcls.train.train_and_evaluate` itself in a temporary workdir (data gathering,
augmentation, metrics, logging, progress reports and checkpoints at the config's cadence), then
runs the same jitted train step, one step per call and back to back, from the same initial state
on the same batches (the loop's own permutations). Prints one JSON line with
`ratio` = loop images/s / bare images/s and its components.

Compilation and evaluation are not training-loop overhead: each is timed and left out of the
loop's time. The loop's clock starts when its first train call returns (compiled); every later
trace, lowering and compile (JAX's `jax.monitoring` compile events: another chunk size, the
logged learning rate's ops) is subtracted, and so is each evaluation, whose clock starts once
the pending training steps are done. The clock stops when `train_and_evaluate` returns, so the
loop's time holds the final checkpoint and the wait for asynchronous checkpoint writes. The bare
side is compiled ahead of its timed steps.

On a machine shared with other jobs the two sides see different loads. `--repeats R` alternates
them R times and reports the median ratio; `cpu_ratio` (the same ratio of this process's CPU
seconds) moves much less with other jobs' load, but counts host work that stalls the device at
half its wall-clock cost on two cores.
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


# What JAX reports through `jax.monitoring` for every jit it traces, lowers and compiles.
_COMPILE_EVENTS = ('/jax/core/compile/jaxpr_trace_duration',
                   '/jax/core/compile/jaxpr_to_mlir_module_duration',
                   '/jax/core/compile/backend_compile_duration')


@dataclasses.dataclass
class _Probe:
  """What the instrumented loop saw. Times are `time.perf_counter()` seconds; `cpu` marks are
  `time.process_time()` (all threads of this process)."""
  start: Optional[float] = None  # the first train call returned (compiled): the clock starts
  start_cpu: Optional[float] = None
  compiles: list = dataclasses.field(default_factory=list)  # (end, seconds) of every compile
  evals: list = dataclasses.field(default_factory=list)  # (start, end, cpu seconds)
  checkpoint_s: float = 0.0  # the synchronous part of saves
  make_args: Any = None  # make_train_fn's arguments, to build the bare step from
  first_state: Any = None  # a copy of the state before the first step
  data: Any = None  # (images, labels) on the device
  perms: dict = dataclasses.field(default_factory=dict)  # epoch0 -> the loop's permutations
  eval_start: Optional[tuple[float, float]] = None

  def on_duration(self, event: str, duration_secs: float, **_) -> None:
    if event in _COMPILE_EVENTS:
      self.compiles.append((time.perf_counter(), duration_secs))

  def in_eval(self, t: float) -> bool:
    return any(a <= t <= b for a, b, _ in self.evals)

  def compile_s(self) -> float:
    return sum(d for _, d in self.compiles)

  def loop_compile_s(self) -> float:
    """Compiles inside the loop's span (a second chunk size, the logged learning rate...),
    evaluation's own excluded: it is in the evaluation time."""
    return sum(d for t, d in self.compiles if t > self.start and not self.in_eval(t))

  def eval_s(self) -> float:
    return sum(b - a for a, b, _ in self.evals)


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

    def train_fn(state, images, labels, perms, epoch0):
      if probe.first_state is None:
        probe.first_state = jax.tree.map(jnp.copy, state)
        probe.data = (images, labels)
      probe.perms.setdefault(epoch0, perms)
      out = fn(state, images, labels, perms, epoch0)
      if probe.start is None:
        probe.start, probe.start_cpu = time.perf_counter(), time.process_time()
      return out

    return train_fn

  def timed_make_eval_fn(*args, **kwargs):
    fn = make_eval_fn(*args, **kwargs)
    batch_size = kwargs['batch_size']

    def eval_fn(state, images, labels, i):
      if i == 0:
        jax.block_until_ready(state)  # pending training steps are the loop's time
        probe.eval_start = (time.perf_counter(), time.process_time())
      out = fn(state, images, labels, i)
      if i == labels.shape[0] // batch_size - 1:
        jax.block_until_ready(out)
        start, start_cpu = probe.eval_start
        probe.evals.append((start, time.perf_counter(), time.process_time() - start_cpu))
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


def run_loop(config: ml_collections.ConfigDict, workdir: str) -> tuple[_Probe, dict]:
  """One instrumented `train_and_evaluate`; returns the probe and the loop's timing."""
  with _instrumented(_Probe()) as probe:
    state = train.train_and_evaluate(config, workdir)
    jax.block_until_ready(state)
    end, end_cpu = time.perf_counter(), time.process_time()
  if probe.start is None:
    raise RuntimeError(f'{workdir} held a finished run: the loop ran no step')
  compile_s = probe.loop_compile_s()
  loop_s = end - probe.start - probe.eval_s() - compile_s
  # Compiling runs on one core, so its CPU seconds are about its wall seconds.
  loop_cpu_s = (end_cpu - probe.start_cpu - sum(c for _, _, c in probe.evals) - compile_s)
  return probe, {'steps': int(state.step), 'loop_s': loop_s, 'loop_cpu_s': loop_cpu_s}


def run_bare(probe: _Probe, steps: int) -> tuple[float, float]:
  """Wall and CPU seconds of `steps` bare train steps (one per call, synced once), compile
  excluded."""
  args, kwargs = probe.make_args
  fn = train.make_train_fn(*args, **{**kwargs, 'num_steps': 1})
  steps_per_epoch = kwargs['steps_per_epoch']
  images, labels = probe.data
  state = jax.tree.map(jnp.copy, probe.first_state)
  fn.lower(state, images, labels, probe.perms[0], 0).compile()
  jax.block_until_ready(state)
  start, start_cpu = time.perf_counter(), time.process_time()
  for step in range(steps):
    epoch0 = step // steps_per_epoch
    state, _ = fn(state, images, labels, probe.perms[epoch0], epoch0)
  jax.block_until_ready(state)
  return time.perf_counter() - start, time.process_time() - start_cpu


def measure(config: ml_collections.ConfigDict, *, name: Optional[str] = None,
            repeats: int = 1, workdir: Optional[str] = None) -> dict[str, Any]:
  """Loop vs bare step for `config`, `repeats` times alternating; returns the result dict."""
  runs = []
  for r in range(repeats):
    with tempfile.TemporaryDirectory(prefix='loop_overhead_') as tmp:
      probe, loop = run_loop(config, os.path.join(workdir or tmp, f'run{r}'))
    bare_s, bare_cpu_s = run_bare(probe, loop['steps'])
    runs.append({'ratio': bare_s / loop['loop_s'], 'cpu_ratio': bare_cpu_s / loop['loop_cpu_s'],
                 'loop_s': loop['loop_s'], 'bare_s': bare_s, 'loop_cpu_s': loop['loop_cpu_s'],
                 'bare_cpu_s': bare_cpu_s, 'checkpoint_s': probe.checkpoint_s,
                 'eval_s': probe.eval_s(), 'compile_s': probe.compile_s(),
                 'loop_compile_s': probe.loop_compile_s(), 'steps': loop['steps']})
  ratios = [run['ratio'] for run in runs]
  median = runs[ratios.index(statistics.median_low(ratios))]  # one real repeat's components
  steps, batch = median['steps'], config.batch_size
  return {
      'benchmark': 'loop_overhead', 'config': name or config.model.name,
      'model': config.model.name, 'batch_size': batch, 'dtype': str(config.model.dtype),
      **median, 'ratios': ratios, 'cpu_ratios': [run['cpu_ratio'] for run in runs],
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
                      help='loop/bare pairs to run; the median ratio is reported')
  parser.add_argument('--workdir', help='keep the runs here (default: a temporary directory)')
  args, overrides = common.parse(parser, argv)
  config = common.load_config(args, overrides)
  result = measure(config, name=args.config, repeats=args.repeats, workdir=args.workdir)
  return common.emit(result, 'loop_overhead', args, argv)


if __name__ == '__main__':
  common.cli(main)

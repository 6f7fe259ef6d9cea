r"""Train-step throughput: images/s of the jitted train step, compile time apart.

    python benchmarks/throughput.py --config configs/resnet50b.py --batch-size 128 \
      [--dtype bfloat16] [--steps 20] [--warmup 2] [--window 5] [--steps-per-dispatch 1]

Prints one JSON line: `images_per_sec` (batch size over the median step time of the timed
windows), `compile_s` (first compile, measured ahead of time and excluded), `device`, `dtype`,
and the model-FLOP utilisation `mfu` where the device's peak is known.

The step is `jaxcls.train.make_train_fn` on random uint8 images of the dataset's shape. Steps
are dispatched asynchronously and synced once per window of `--window` calls, as the training
loop syncs only at log points: a per-step sync would add the host's dispatch latency to every
step, which on a GPU can be a large part of a small model's step.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top

from benchmarks import common  # pylint: disable=g-import-not-at-top


def measure(config: ml_collections.ConfigDict, *, name: Optional[str] = None, steps: int = 20,
            warmup: int = 2, window: int = 5, steps_per_dispatch: int = 1) -> dict[str, Any]:
  """Times `steps` train steps of `config` (after `warmup` calls); returns the result dict.

  `name` labels the result (the config target); default the model name.
  """
  window = max(1, min(window, steps))
  calls = warmup + -(-steps // steps_per_dispatch)
  # Enough synthetic batches that no call crosses more than one epoch boundary.
  step = common.build_step(config, steps_per_epoch=max(8, steps_per_dispatch),
                           num_steps=steps_per_dispatch)
  t0 = time.perf_counter()
  lowered = step.train_fn.lower(*step.abstract_args)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = (cost or {}).get('flops')

  state, images, labels = step.materialize()
  perms = {}
  times = []
  done = 0  # steps run
  window_start, window_steps = None, 0
  for call in range(calls):
    if call == warmup:
      jax.block_until_ready(state)
      window_start, window_steps = time.perf_counter(), 0
    epoch0 = done // step.steps_per_epoch
    if epoch0 not in perms:
      perms[epoch0] = step.perms(epoch0)
    state, _ = step.train_fn(state, images, labels, perms[epoch0], epoch0)
    done += steps_per_dispatch
    if call >= warmup:
      window_steps += steps_per_dispatch
      if window_steps >= window or call == calls - 1:
        jax.block_until_ready(state)
        now = time.perf_counter()
        times.append((now - window_start) / window_steps)
        window_start, window_steps = now, 0

  step_s = statistics.median(times)
  dtype = str(config.model.dtype)
  macs = step.macs()
  images_per_sec = config.batch_size / step_s
  # Forward + backward of the convs and Dense layers: 3 passes of 2 FLOPs per MAC.
  model_flops = 6 * macs * images_per_sec
  result = {
      'benchmark': 'throughput', 'config': name or config.model.name,
      'model': config.model.name, 'batch_size': config.batch_size, 'dtype': dtype,
      'images_per_sec': images_per_sec, 'step_s': step_s,
      'step_s_min': min(times), 'step_s_max': max(times), 'timed_steps': done - warmup *
      steps_per_dispatch, 'windows': len(times), 'steps_per_dispatch': steps_per_dispatch,
      'lower_s': t1 - t0, 'compile_s': t2 - t1, 'macs_per_image': macs,
      'model_tflops_per_sec': model_flops / 1e12,
      'xla_flops_per_step': xla_flops, **common.describe(),
  }
  peak = common.peak_flops(result['device'], dtype)
  result['peak_tflops_per_sec'] = None if peak is None else peak / 1e12
  result['mfu'] = None if peak is None else model_flops / (peak * result['num_devices'])
  return result


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  common.add_common_flags(parser)
  parser.add_argument('--batch-size', type=int, help='global batch (default: the config\'s)')
  parser.add_argument('--steps', type=int, default=20, help='timed steps')
  parser.add_argument('--warmup', type=int, default=2, help='untimed calls after the compile')
  parser.add_argument('--window', type=int, default=5, help='steps between host syncs')
  parser.add_argument('--steps-per-dispatch', type=int, default=1,
                      help='train steps unrolled into one call (config.steps_per_dispatch)')
  args, overrides = common.parse(parser, argv)
  config = common.load_config(args, overrides)
  result = measure(config, name=args.config, steps=args.steps, warmup=args.warmup,
                   window=args.window, steps_per_dispatch=args.steps_per_dispatch)
  return common.emit(result, 'throughput', args, argv)


if __name__ == '__main__':
  common.cli(main)

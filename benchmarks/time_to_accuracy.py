r"""Time to accuracy: train a config for N seeds, each in its own `main.py` process, and report
the accuracy it reaches and when.

    python benchmarks/time_to_accuracy.py --config configs/airbench94.py --seeds 5 \
      [--target 0.94 ...] [--workdir-root DIR] [--record NAME] [--config.FIELD=VALUE ...]

Run i trains `--config.seed=SEED+i` (SEED: the config's seed) in `DIR/seed<SEED+i>` from a
fresh process, one run at a time, evaluating every `eval_every_epochs` (1 by default). Prints
one JSON line:
- `test_accuracy_mean`, `_std` (over seeds, n-1; None for one seed), `_min`, and each run's;
- `wall_s`: seconds from the run's process start to its exit (imports, data loading,
  compilation, evaluations and checkpoints included), mean and per run;
- `train_s`: seconds of training without compilation, evaluation or checkpoints: the run's
  images over its measured train images/s (`results.json`);
- `epochs`, `steps`, `batch_size`, the device;
- `targets`: for each `--target` accuracy (default: 0.94, airbench94's), how many runs reached
  it and, per run, the first evaluation at or above it: its `epoch`, `wall_s` (when that
  evaluation was written, from process start) and `train_s` (training time to that step at the
  run's rate); None where a run never reached it. The evaluations are read from the run's
  TensorBoard events (`eval_accuracy`), so a run that evaluates only at the end can only cross
  there.

Measure like airbench (docs/shared STYLE 12): a figure is a mean over seeds with its spread, and
`wall_s` includes compilation where `train_s` does not. Each run compiles afresh unless
`JAX_COMPILATION_CACHE_DIR` is set. `--record NAME` stores the line as
`docs/runs/bench-NAME.json` for docs/RESULTS.md.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Optional

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import common  # pylint: disable=g-import-not-at-top
from jaxcls import train  # pylint: disable=g-import-not-at-top
from jaxcls.report import curves  # pylint: disable=g-import-not-at-top


def train_once(target: str, overrides: Sequence[str], seed: int, workdir: str,
               log_path: str, timeout: Optional[float] = None) -> dict[str, Any]:
  """Runs `main.py` for one seed in a fresh process; returns its measurements."""
  command = [sys.executable, str(REPO / 'main.py'), '--config', target,
             f'--workdir={workdir}', *overrides, f'--config.seed={seed}']
  with open(log_path, 'w') as log:
    start = time.time()
    returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                timeout=timeout, check=False).returncode
    wall = time.time() - start
  if returncode:
    raise RuntimeError(f'seed {seed}: {" ".join(command)} exited {returncode}; see {log_path}')
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  # Each evaluation writes eval_accuracy and the epoch it was taken at, at the same step.
  epochs = {step: epoch for step, _, epoch in curves.read_scalar_events(workdir, 'epoch')}
  evals = [(step, wall_time, accuracy, epochs.get(step))
           for step, wall_time, accuracy in curves.read_scalar_events(workdir, 'eval_accuracy')]
  return {'seed': seed, 'results': results, 'wall_s': wall, 'start': start, 'evals': evals}


def _train_seconds(results: dict, step: int) -> Optional[float]:
  rate = results.get('train_images_per_sec')
  return step * results['batch_size'] / rate if rate else None


def crossing(run: dict, target: float) -> Optional[dict[str, float]]:
  """The first evaluation of `run` at or above `target`, or None."""
  for step, wall_time, accuracy, epoch in run['evals']:
    if accuracy >= target:
      return {'epoch': None if epoch is None else round(epoch, 3), 'step': step,
              'wall_s': wall_time - run['start'],
              'train_s': _train_seconds(run['results'], step), 'accuracy': accuracy}
  return None


def _stats(values: Sequence[float], prefix: str) -> dict[str, Optional[float]]:
  return {f'{prefix}_mean': statistics.fmean(values),
          f'{prefix}_std': statistics.stdev(values) if len(values) > 1 else None,
          f'{prefix}_min': min(values)}


def summarize(runs: Sequence[dict], targets: Sequence[float], config_name: str) -> dict:
  """The JSON line of `runs` (as `train_once` returns them)."""
  first = runs[0]['results']
  accuracies = [r['results']['test_accuracy'] for r in runs]
  train_s = [_train_seconds(r['results'], r['results']['step']) for r in runs]
  result = {
      'benchmark': 'time_to_accuracy', 'config': config_name, 'model': first['model'],
      'seeds': [r['seed'] for r in runs], 'runs': len(runs),
      **_stats(accuracies, 'test_accuracy'), 'test_accuracies': accuracies,
      'wall_s_mean': statistics.fmean(r['wall_s'] for r in runs),
      'wall_s': [r['wall_s'] for r in runs],
      'train_s_mean': None if None in train_s else statistics.fmean(train_s),
      'train_s': train_s,
      'train_images_per_sec': [r['results'].get('train_images_per_sec') for r in runs],
      'epochs': first['epoch'], 'steps': first['step'], 'batch_size': first['batch_size'],
      'dataset': first['dataset'], 'eval_split': first['eval_split'],
      'eval_size': first['eval_size'], 'evals_per_run': len(runs[0]['evals']),
      'targets': {},
  }
  for target in targets:
    crossed = [crossing(r, target) for r in runs]
    reached = [c for c in crossed if c is not None]
    result['targets'][f'{target:g}'] = {
        'reached': len(reached), 'runs': crossed,
        'wall_s_mean': statistics.fmean(c['wall_s'] for c in reached) if reached else None,
        'train_s_mean': (statistics.fmean(c['train_s'] for c in reached)
                         if reached and all(c['train_s'] is not None for c in reached)
                         else None),
        'epoch_mean': (statistics.fmean(c['epoch'] for c in reached)
                       if reached and all(c['epoch'] is not None for c in reached) else None),
    }
  return result


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  common.add_common_flags(parser)
  parser.add_argument('--seeds', type=int, default=1, help='runs, with seeds SEED..SEED+N-1 (SEED: the config\'s seed)')
  parser.add_argument('--target', type=float, action='append',
                      help='test accuracy to time (repeatable; default 0.94)')
  parser.add_argument('--workdir-root',
                      help='where the runs train (default: a temporary directory, removed)')
  parser.add_argument('--timeout', type=float, help='seconds allowed per run')
  args, overrides = common.parse(parser, argv)
  if args.seeds < 1:
    parser.error('--seeds: give at least 1')
  config = common.load_config(args, overrides)
  train.check_config(config)  # a bad field fails here, not in every run
  if args.dtype:
    overrides = [*overrides, f'--config.model.dtype={args.dtype}']
  targets = args.target or [0.94]
  target_path = args.config.split(':', 1)[0]
  config_arg = args.config if os.path.isabs(target_path) or os.path.isfile(target_path) else (
      str(REPO / args.config))
  with tempfile.TemporaryDirectory(prefix='time_to_accuracy-') as scratch:
    root = args.workdir_root or scratch
    os.makedirs(root, exist_ok=True)
    runs = []
    for seed in range(config.seed, config.seed + args.seeds):
      workdir = os.path.join(root, f'seed{seed}')
      runs.append(train_once(config_arg, overrides, seed, workdir,
                             os.path.join(root, f'seed{seed}.log'), args.timeout))
      print(f"seed {seed}: test_accuracy {runs[-1]['results']['test_accuracy']:.4f}, "
            f"{runs[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
  result = {**summarize(runs, targets, args.config), **common.describe()}
  return common.emit(result, 'time_to_accuracy', args, argv)


if __name__ == '__main__':
  common.cli(main)

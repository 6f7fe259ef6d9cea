r"""First-step compile time of the train step: what a user waits for before training starts.

    python benchmarks/compile_time.py                          # every seed-A model
    python benchmarks/compile_time.py --config configs/resnet50b.py [--config ...]
    python benchmarks/compile_time.py --models resnet50b,densenet100k12 --batch-size 128
    python benchmarks/compile_time.py --families resnest,tresnet,ibn   # every model they register

Prints one JSON line: per config, `lower_s` (trace the step and lower it to StableHLO) and
`compile_s` (XLA compile), with their CPU seconds, for the train step
`jaxcls.train.make_train_fn` builds, at the config's batch size unless `--batch-size` is given. Nothing is executed, so a batch of 1024 costs
no memory. A model without a config file gets seed A's recipe (`configs/seed_a.py`).
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ml_collections  # pylint: disable=g-import-not-at-top

from benchmarks import common  # pylint: disable=g-import-not-at-top
from jaxcls import report  # pylint: disable=g-import-not-at-top
from jaxcls.errors import UserError  # pylint: disable=g-import-not-at-top
from jaxcls.models import list_models  # pylint: disable=g-import-not-at-top
from jaxcls.models.registry import model_family  # pylint: disable=g-import-not-at-top


def seed_a_models() -> list[str]:
  """The models of seed A's table, in its order."""
  names = []
  for _, target, _, _ in report.SEED_A_ROWS:
    name = os.path.splitext(os.path.basename(target.split(':')[0]))[0]
    if name not in names:
      names.append(name)
  return names


def family_models(families: str) -> list[str]:
  """Every registered model of the comma-separated family modules ('resnest,ibn'), sorted."""
  wanted = {f.strip() for f in families.split(',') if f.strip()}
  known = {model_family(n) for n in list_models()}
  if wanted - known:
    raise UserError(f"--families: unknown {', '.join(sorted(wanted - known))}; choose from: "
                    f"{', '.join(sorted(known))}")
  return [n for n in list_models() if model_family(n) in wanted]


def model_target(name: str) -> str:
  """`configs/NAME.py` when it exists, else `seed_a:NAME` (seed A's recipe for the model)."""
  path = os.path.join('configs', f'{name}.py')
  return path if os.path.isfile(os.path.join(report.REPO, path)) else f'seed_a:{name}'


def measure_one(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
  step = common.build_step(config)
  t0, c0 = time.perf_counter(), time.process_time()
  lowered = step.train_fn.lower(*step.abstract_args)
  t1, c1 = time.perf_counter(), time.process_time()
  lowered.compile()
  t2, c2 = time.perf_counter(), time.process_time()
  # CPU seconds move less than wall seconds when other jobs share the machine.
  return {'config': name, 'model': config.model.name, 'batch_size': config.batch_size,
          'dtype': str(config.model.dtype), 'lower_s': t1 - t0, 'compile_s': t2 - t1,
          'total_s': t2 - t0, 'lower_cpu_s': c1 - c0, 'compile_cpu_s': c2 - c1}


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', action='append', default=[],
                      help='config file[:variants]; repeat for several (default: --models)')
  parser.add_argument('--models', help='comma-separated model names, each with its config file '
                      'or seed A\'s recipe (default: every seed-A model)')
  parser.add_argument('--families', help='comma-separated family modules of jaxcls/models '
                      '(resnest,tresnet,ibn): every model they register, as --models does')
  parser.add_argument('--batch-size', type=int, help='global batch (default: each config\'s)')
  parser.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'))
  parser.add_argument('--record', metavar='NAME',
                      help='also store the result as docs/runs/bench-NAME.json')
  parser.add_argument('--notes', default='', help='notes for the record')
  parser.add_argument('--record-dir', default=os.path.join(report.REPO, report.RUNS_DIR),
                      help='where --record writes (default: docs/runs of this checkout)')
  args, overrides = common.parse(parser, argv)
  targets = list(args.config)
  if args.families:
    targets += [model_target(n) for n in family_models(args.families)]
  if args.models or not targets:
    names = args.models.split(',') if args.models else seed_a_models()
    targets += [model_target(n.strip()) for n in names if n.strip()]
  results = []
  for target in targets:
    config = report.apply_overrides(common.target_config(target), overrides)
    if args.dtype:
      config.model.dtype = args.dtype
    if args.batch_size:
      config.batch_size = args.batch_size
    results.append(measure_one(config, target))
    print(f"{target}: {results[-1]['total_s']:.1f} s", file=sys.stderr, flush=True)
  result = {'benchmark': 'compile_time', 'results': results, **common.describe()}
  return common.emit(result, 'compile_time', args, argv)


if __name__ == '__main__':
  common.cli(main)

r"""First-step compile time of the train step: what a user waits for before training starts.

    python benchmarks/compile_time.py                          # every seed-A model
    python benchmarks/compile_time.py --config configs/resnet50b.py [--config ...]
    python benchmarks/compile_time.py --models resnet50b,densenet100k12 --batch-size 128
    python benchmarks/compile_time.py --models inception_v3,inception_v4,xception
    python benchmarks/compile_time.py --models resnest,tresnet,ibn   # every model they register
    python benchmarks/compile_time.py --models all             # every registered model

Prints one JSON line: per config, `lower_s` (trace the step and lower it to StableHLO) and
`compile_s` (XLA compile), with their CPU seconds, for the train step
`jaxcls.train.make_train_fn` builds, at the config's batch size unless `--batch-size` is given.
Nothing is executed, so a batch of 1024 costs no memory. A model without a config file gets seed A's recipe (`configs/seed_a.py`).
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
from jaxcls import models, report  # pylint: disable=g-import-not-at-top
from jaxcls.errors import UserError  # pylint: disable=g-import-not-at-top
from jaxcls.models.registry import model_family  # pylint: disable=g-import-not-at-top


def seed_a_models() -> list[str]:
  """The models of seed A's table, in its order."""
  names = []
  for _, target, _, _ in report.SEED_A_ROWS:
    name = os.path.splitext(os.path.basename(target.split(':')[0]))[0]
    if name not in names:
      names.append(name)
  return names


def family_models(family: str) -> list[str]:
  """Every registered model of the family module `family` ('resnest'), sorted; [] if none."""
  return [n for n in models.list_models() if model_family(n) == family]


def expand_models(spec: str) -> list[str]:
  """`--models`: comma-separated items, each a model name, a family module of jaxcls/models
  ('resnest': every model it registers), or a group: 'seed_a' (seed A's table) or 'all' (every
  registered model). Duplicates are dropped; an unknown item raises UserError."""
  groups = {'seed_a': seed_a_models, 'all': models.list_models}
  names = []
  for item in filter(None, (s.strip() for s in spec.split(','))):
    if item in groups:
      expanded = groups[item]()
    elif item in models.list_models():
      expanded = [item]
    else:
      expanded = family_models(item)
    if not expanded:
      families = sorted({model_family(n) for n in models.list_models()})
      raise UserError(f"--models: unknown {item!r}; give model names, family modules "
                      f"({', '.join(families)}) or the groups seed_a, all")
    names += [n for n in expanded if n not in names]
  return names


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
  parser.add_argument('--models', help='comma-separated model names (each with its config file '
                      'or seed A\'s recipe), family modules of jaxcls/models (resnest: every '
                      'model it registers) and the groups seed_a, all (default: seed_a)')
  parser.add_argument('--batch-size', type=int, help='global batch (default: each config\'s)')
  parser.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'))
  parser.add_argument('--record', metavar='NAME',
                      help='also store the result as docs/runs/bench-NAME.json')
  parser.add_argument('--notes', default='', help='notes for the record')
  parser.add_argument('--record-dir', default=os.path.join(report.REPO, report.RUNS_DIR),
                      help='where --record writes (default: docs/runs of this checkout)')
  args, overrides = common.parse(parser, argv)
  targets = list(args.config)
  if args.models or not targets:
    targets += [model_target(n) for n in expand_models(args.models or 'seed_a')]
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

"""Workdirs and the runs in them: reading results, matching a run to a recipe, table rows."""

import glob
import json
import os
from collections.abc import Sequence
from typing import Any, Optional

import ml_collections

from jaxcls.errors import UserError
from jaxcls.report.facts import config_facts, load_config
from jaxcls.report.labels import workdir_label
from jaxcls.report.tables import Row, config_label

# Config fields that say where data lives or how often the loop reports, not what is trained:
# a run and a config that differ only here are the same experiment.
_NOT_THE_EXPERIMENT = (
    'dataset.path', 'dataset.data_dir', 'dataset.cache_dir', 'dataset.source', 'model.dtype',
    'log_every_steps', 'progress_every_secs', 'eval_every_epochs', 'checkpoint_every_steps',
    'keep_checkpoints', 'steps_per_dispatch', 'eval_batch_size', 'init_from',
    'data_feed',  # the same batches, fed from the device or the host
    'nan_policy',  # differs only when a step goes non-finite, which a finished run reports
)


def read_workdir(workdir: str) -> tuple[dict, Optional[dict]]:
  """(config.json, results.json or None) of a workdir."""
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(config_path):
    raise UserError(f'target {workdir!r}: a workdir needs the config.json that training writes; '
                    'give a workdir of main.py or a config file')
  with open(config_path) as f:
    config = json.load(f)
  results_path = os.path.join(workdir, 'results.json')
  results = None
  if os.path.isfile(results_path):
    with open(results_path) as f:
      results = json.load(f)
  return config, results


def row_from_workdir(workdir: str) -> Row:
  config, results = read_workdir(workdir)
  config = ml_collections.ConfigDict(config)
  return Row(workdir_label(workdir, config), config_facts(config)).take_results(results)


def row_from_target(target: str, runs: Sequence[dict] = ()) -> Row:
  """The row of a workdir or a config file; a config row takes its numbers from the first run
  in `runs` (dicts with `config` and `results`) whose config is the same experiment."""
  if os.path.isdir(target):
    return row_from_workdir(target)
  config = load_config(target)
  run = find_run(config, runs)
  return Row(config_label(target), config_facts(config)).take_results(run and run['results'])


def _flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = list(value) if isinstance(value, tuple) else value
  return flat


def same_experiment(config: Any, other: Any) -> bool:
  """Whether two configs (ConfigDicts or dicts) train the same thing: equal in every field but
  data location, precision and loop cadence (`_NOT_THE_EXPERIMENT`)."""
  def normalised(c: Any) -> dict[str, Any]:
    if isinstance(c, ml_collections.ConfigDict):
      c = json.loads(c.to_json_best_effort())
    return {k: v for k, v in _flatten(c).items() if k not in _NOT_THE_EXPERIMENT}
  return normalised(config) == normalised(other)


def find_run(config: ml_collections.ConfigDict, runs: Sequence[dict]) -> Optional[dict]:
  for run in runs:
    if run.get('results') is not None and same_experiment(config, run['config']):
      return run
  return None


def scan_workdirs(root: str) -> list[dict]:
  """Finished runs under `root` (any depth), as {'workdir', 'config', 'results'}."""
  runs = []
  for results_path in sorted(glob.glob(os.path.join(root, '**', 'results.json'),
                                       recursive=True)):
    workdir = os.path.dirname(results_path)
    if os.path.isfile(os.path.join(workdir, 'config.json')):
      config, results = read_workdir(workdir)
      runs.append({'workdir': workdir, 'config': config, 'results': results})
  return runs

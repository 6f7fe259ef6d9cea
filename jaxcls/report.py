r"""Results tables in the seeds' formats, learning curves, and `docs/RESULTS.md`.

    python -m jaxcls.report configs/resnet50b.py runs/r18_c10    # a Markdown table
    python -m jaxcls.report --csv --out table.csv configs/resnet50b.py:sd,htd runs/r18_c10
    python -m jaxcls.report --plot curves.png runs/a runs/b        # eval accuracy curves
    python -m jaxcls.report --record-run runs/r18_c10 --command 'python main.py ...'
    python -m jaxcls.report --results-doc                           # rebuilds docs/RESULTS.md

A target is a config file with optional variants (`configs/resnet50b.py:sd,htd`) or a workdir
(holding `config.json` and, once finished, `results.json`). Params and FLOPs/2 always come from
the config; Top-1 and train images/s from a run ("–" where there is none).

Easy to get wrong (SPEC section 0):
- "Params" is the Flax `params` (trainable) count for every row. That is seed A's ResNet50b figure
  (1,309,210) and every seed-B figure, but seed A's OTHER rows are Keras totals, which include the
  BatchNorm moving mean and variance: `--total` adds that column.
- "FLOPs/2" is the multiply-accumulates of the conv and Dense layers only, at batch 1 on the
  dataset's input shape (`models.count_macs`), not XLA's cost analysis.
"""

import argparse
import csv
import dataclasses
import datetime
import glob
import io
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import ml_collections

from jaxcls.errors import UserError

DASH = '–'
COLUMNS = ('Model', 'Top-1', 'Error', 'Params', 'FLOPs/2', 'Train img/s')
TOTAL_COLUMN = 'Params + BN stats'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS_DIR = os.path.join('docs', 'runs')
RESULTS_DOC = os.path.join('docs', 'RESULTS.md')
REGENERATE = 'python -m jaxcls.report --results-doc'

# Input shape and classes of the datasets whose facts are fixed, so a report needs no data.
KNOWN_DATASETS = {
    'cifar10': ((32, 32, 3), 10),
    'cifar100': ((32, 32, 3), 100),
    'svhn_cropped': ((32, 32, 3), 10),
    'fashion_mnist': ((28, 28, 1), 10),
    'mnist': ((28, 28, 1), 10),
    'kmnist': ((28, 28, 1), 10),
    'digits': ((32, 32, 1), 10),  # jaxcls' embedded digits, upsampled to 32x32
}

# Config fields that say where data lives or how often the loop reports, not what is trained:
# a run and a config that differ only here are the same experiment.
_NOT_THE_EXPERIMENT = (
    'dataset.path', 'dataset.data_dir', 'dataset.cache_dir', 'dataset.source', 'model.dtype',
    'log_every_steps', 'progress_every_secs', 'eval_every_epochs', 'checkpoint_every_steps',
    'keep_checkpoints', 'steps_per_dispatch', 'eval_batch_size', 'init_from',
)

# Seed A's rows (SPEC section 12): label, target, seed top-1 (%), seed train img/s (Tesla T4,
# FP16+XLA, batch 256). A missing config file falls back to the model's registry preset.
SEED_A_ROWS = (
    ('MobileNetV2 96px +HTD +CutMix', 'configs/mobilenetv2.py:htd,cutmix', 95.17, None),
    ('ResNet34', 'configs/resnet34.py', 92.64, 4160),
    ('ResNet34 +HTD +CutMix', 'configs/resnet34.py:htd,cutmix', 94.59, 4160),
    ('ResNet35b', 'configs/resnet35b.py', 92.83, 3012),
    ('ResNet35b +Mish', 'configs/resnet35b.py:mish', 93.50, 2065),
    ('ResNet35b +HTD +CutMix', 'configs/resnet35b.py:htd,cutmix', 95.06, 3012),
    ('ResNet50b', 'configs/resnet50b.py', 93.18, 2171),
    ('ResNet50b +Mish', 'configs/resnet50b.py:mish', 93.94, 1478),
    ('ResNet50b +HTD', 'configs/resnet50b.py:htd', 93.65, 2171),
    ('ResNet50b +SD', 'configs/resnet50b.py:sd', 94.05, 2247),
    ('ResNet50b +SD +Mish', 'configs/resnet50b.py:sd,mish', 94.42, 1544),
    ('ResNet50b +SD +HTD +Mish', 'configs/resnet50b.py:sd,htd,mish', 94.50, 1544),
    ('ResNet50b +SD +Cosine +Mish', 'configs/resnet50b.py:sd,cosine,mish', 94.69, 1544),
    ('ResNet50b +SD +HTD +Cutout16', 'configs/resnet50b.py:sd,htd,cutout16', 94.96, 2247),
    ('ResNet50b +SD +HTD +Mixup0.2', 'configs/resnet50b.py:sd,htd,mixup0.2', 95.42, 2247),
    ('ResNet50b +SD +HTD +Mixup1', 'configs/resnet50b.py:sd,htd,mixup1', 95.48, 2247),
    ('ResNet50b +SD +HTD +CutMix', 'configs/resnet50b.py:sd,htd,cutmix', 95.56, 2247),
    ('ResNet50b +SD +Mish +HTD +Cutout16', 'configs/resnet50b.py:sd,mish,htd,cutout16', 95.37,
     1544),
    ('ResNet101b', 'configs/resnet101b.py', 93.79, 1387),
    ('ResNet101b +SD', 'configs/resnet101b.py:sd', 94.40, 1512),
    ('ResNet101b +SD +Mish +HTD +Cutout16', 'configs/resnet101b.py:sd,mish,htd,cutout16', 95.55,
     1074),
    ('ResNet152b +SD', 'configs/resnet152b.py:sd', 95.06, 1161),
    ('ResNet170b +Mish +HTD +CutMix', 'configs/resnet170b.py:mish,htd,cutmix', None, None),
    ('WideResNet18 +Cutout +HTD', 'configs/wideresnet18.py:cutout16,htd', 94.91, None),
    ('ResNeXt50C32', 'configs/resnext50_c32.py', 94.07, None),
    ('ResNeXt50C32 +SD', 'configs/resnext50_c32.py:sd', 94.49, None),
    ('ResNeXt101C32', 'configs/resnext101_c32.py', 94.25, None),
    ('ResNeXt101C32 +SD', 'configs/resnext101_c32.py:sd', 94.88, None),
    ('SeNet50', 'configs/senet50.py', 93.40, None),
    ('SeNet50 +SD', 'configs/senet50.py:sd', 94.25, None),
    ('SeNet101', 'configs/senet101.py', 94.30, None),
    ('SeNet101 +SD', 'configs/senet101.py:sd', 94.65, None),
    ('DenseNet250k24 (paper figure)', 'configs/densenet250k24.py', 96.38, None),
    ('DenseNet190k40 (paper figure)', 'configs/densenet190k40.py', 96.54, None),
)

# Seed B's rows: Fashion-MNIST, train[:30000], evaluated on the other 40,000 images.
SEED_B_ROWS = (
    ('WRN-28-10', 'configs/wrn28_10.py', 93.2775, None),
    ('DenseNet-BC-100-12', 'configs/densenet100k12.py:fmnist', 93.77, None),
    ('DPN', 'configs/dpn.py', 93.21, None),
    ('Shake-Shake 26 2x96d', 'configs/shake_shake26_2x96d.py', 93.7275, None),
    ('Shake-Shake 26 2x64d', 'configs/shake_shake26_2x64d.py', 93.725, None),
)
SEED_B_DATASET = 'fashion_mnist'


# --- Formats (seed A's README): 1,309,210 / 74.11M / 95.56%.

def format_count(n: Optional[int]) -> str:
  """`1309210` -> `'1,309,210'`."""
  return DASH if n is None else f'{int(n):,}'


def format_macs(n: Optional[int]) -> str:
  """Multiply-accumulates in millions with two decimals: `74110042` -> `'74.11M'`."""
  return DASH if n is None else f'{n / 1e6:,.2f}M'


def format_percent(fraction: Optional[float]) -> str:
  """`0.95564` -> `'95.56%'`."""
  return DASH if fraction is None else f'{100 * fraction:.2f}%'


def format_rate(per_sec: Optional[float]) -> str:
  """Images per second, rounded: `2171.4` -> `'2,171'`."""
  return DASH if per_sec is None else f'{per_sec:,.0f}'


# --- Configs and their model facts.

def _ensure_repo_on_path() -> None:
  # Config files import their siblings as `from configs import default`.
  if REPO not in sys.path:
    sys.path.insert(0, REPO)


def load_config(target: str) -> ml_collections.ConfigDict:
  """The config of `path/to/config.py[:variants]`, as `main.py --config` would build it."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  path, *arg = target.split(':', 1)
  if not os.path.isfile(path):
    raise UserError(f"target {target!r}: no such config file '{path}'; give a config file "
                    '(configs/x.py[:variants]) or a workdir')
  _ensure_repo_on_path()
  spec = importlib.util.spec_from_file_location('jaxcls_report_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  # As ml_collections' config_flags: the text after the colon is get_config's one argument.
  return ml_collections.ConfigDict(module.get_config(*arg))


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Iterable[str]) -> ml_collections.ConfigDict:
  """Applies `--config.a.b=value` strings (main.py's syntax; values as Python literals)."""
  import ast  # pylint: disable=g-import-not-at-top

  for override in overrides:
    key, sep, text = override.removeprefix('--config.').partition('=')
    if not sep or not key:
      raise UserError(f'{override}: expected --config.FIELD=VALUE')
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text  # a bare word: a string such as bfloat16
    target = config
    *path, leaf = key.split('.')
    try:
      for part in path:
        target = target[part]
      target[leaf] = value
    except (KeyError, TypeError, ValueError) as e:
      raise UserError(f'--config.{key}: cannot set to {text!r} ({e})') from e
  return config


def input_spec(config: ml_collections.ConfigDict) -> tuple[tuple[int, int, int], int]:
  """(image shape HWC, number of classes) of `config.dataset`, decoding nothing if it can."""
  dataset = config.dataset
  known = KNOWN_DATASETS.get(dataset.name)
  if known is not None:
    shape, num_classes = known
  else:  # not a fixed dataset: load it as a run would (decoded once, then cached)
    from jaxcls import data  # pylint: disable=g-import-not-at-top

    _, _, info = data.load_dataset(dataset)
    shape, num_classes = info.image_shape, info.num_classes
  return tuple(shape), dataset.get('num_classes') or num_classes


def model_overrides(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.model` minus its name and unset fields: `create_model`'s keyword arguments."""
  return {k: v for k, v in config.model.items() if k != 'name' and v is not None}


@dataclasses.dataclass(frozen=True)
class ModelFacts:
  params: int  # Flax `params`: trainable
  batch_stats: int  # BatchNorm moving statistics (Keras counts them as parameters)
  macs: int  # conv + Dense multiply-accumulates at batch 1: seed A's FLOPs/2


def model_facts(model_name: str, overrides: dict[str, Any], image_shape: Sequence[int],
                num_classes: int) -> ModelFacts:
  from jaxcls import models  # pylint: disable=g-import-not-at-top

  model = models.create_model(model_name, num_classes=num_classes, **overrides)
  shape = (1, *image_shape)
  params, batch_stats = models.count_params(model, shape)
  return ModelFacts(params, batch_stats, models.count_macs(model, shape))


def config_facts(config: ml_collections.ConfigDict) -> ModelFacts:
  shape, num_classes = input_spec(config)
  return model_facts(config.model.name, model_overrides(config), shape, num_classes)


# --- Rows.

@dataclasses.dataclass
class Row:
  label: str
  facts: Optional[ModelFacts]
  top1: Optional[float] = None  # fraction
  images_per_sec: Optional[float] = None

  def cells(self, total: bool = False) -> list[str]:
    facts = self.facts
    cells = [self.label, format_percent(self.top1),
             format_percent(None if self.top1 is None else 1 - self.top1),
             format_count(facts and facts.params), format_macs(facts and facts.macs),
             format_rate(self.images_per_sec)]
    if total:
      cells.append(format_count(facts and facts.params + facts.batch_stats))
    return cells

  def values(self, total: bool = False) -> dict[str, Any]:
    """Plain numbers for CSV: percents as numbers, MACs as an integer, '' when missing."""
    facts = self.facts
    values = {
        'model': self.label,
        'top1_percent': '' if self.top1 is None else round(100 * self.top1, 4),
        'error_percent': '' if self.top1 is None else round(100 * (1 - self.top1), 4),
        'params': '' if facts is None else facts.params,
        'macs': '' if facts is None else facts.macs,
        'train_images_per_sec': '' if self.images_per_sec is None else
                                round(self.images_per_sec, 1),
    }
    if total:
      values['params_with_bn_stats'] = '' if facts is None else facts.params + facts.batch_stats
    return values


def config_label(target: str) -> str:
  """`configs/resnet50b.py:sd,htd` -> `resnet50b +sd +htd`."""
  path, _, variants = target.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  return ' '.join([name] + [f'+{v.strip()}' for v in variants.split(',') if v.strip()])


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
  label = f'{os.path.basename(os.path.normpath(workdir))} ({config.model.name})'
  row = Row(label, config_facts(config))
  if results is not None:
    row.top1 = results.get('test_accuracy')
    row.images_per_sec = results.get('train_images_per_sec')
  return row


def row_from_target(target: str, runs: Sequence[dict] = ()) -> Row:
  """The row of a workdir or a config file; a config row takes its numbers from the first run
  in `runs` (dicts with `config` and `results`) whose config is the same experiment."""
  if os.path.isdir(target):
    return row_from_workdir(target)
  config = load_config(target)
  row = Row(config_label(target), config_facts(config))
  run = find_run(config, runs)
  if run is not None:
    row.top1 = run['results'].get('test_accuracy')
    row.images_per_sec = run['results'].get('train_images_per_sec')
  return row


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


# --- Tables.

def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in body]
  return '\n'.join(lines) + '\n'


def rows_markdown(rows: Sequence[Row], total: bool = False) -> str:
  header = list(COLUMNS) + ([TOTAL_COLUMN] if total else [])
  return markdown_table(header, [row.cells(total) for row in rows])


def rows_csv(rows: Sequence[Row], total: bool = False) -> str:
  out = io.StringIO()
  values = [row.values(total) for row in rows]
  fields = list(values[0]) if values else list(Row('', None).values(total))
  writer = csv.DictWriter(out, fieldnames=fields, lineterminator='\n')
  writer.writeheader()
  writer.writerows(values)
  return out.getvalue()


# --- Learning curves from the TensorBoard logs that clu writes.

def read_scalars(workdir: str, tags: Sequence[str]) -> dict[str, list[tuple[int, float, float]]]:
  """{tag: [(step, seconds into the run, value), ...]} from the workdir's event files.

  Seconds count time inside training sessions: a resumed run continues its clock where the last
  session's events stopped, so the time it was not running is left out.
  """
  # Imported here: TensorBoard loads TensorFlow, seconds that a table does not need.
  from tensorboard.backend.event_processing import event_file_loader
  from tensorboard.util import tensor_util

  # One event file per session. The file name and its first event carry whole seconds only,
  # so order the sessions by their last event.
  sessions = [list(event_file_loader.EventFileLoader(path).Load())
              for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))]
  sessions = sorted((s for s in sessions if s), key=lambda events: events[-1].wall_time)
  scalars: dict[str, list[tuple[int, float, float]]] = {tag: [] for tag in tags}
  offset = 0.0
  for events in sessions:
    start = events[0].wall_time
    for event in events:
      for value in event.summary.value:
        if value.tag in scalars:
          number = (float(tensor_util.make_ndarray(value.tensor)) if value.HasField('tensor')
                    else float(value.simple_value))
          scalars[value.tag].append((event.step, offset + event.wall_time - start, number))
    offset += events[-1].wall_time - start
  for series in scalars.values():
    series.sort()
  return scalars


def plot_runs(workdirs: Sequence[str], path: str) -> list[str]:
  """Eval accuracy against epoch (left) and against wall-clock minutes (right), one labelled
  line per run, saved as an image at `path`; returns the line labels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  runs = []
  for workdir in workdirs:
    scalars = read_scalars(workdir, ('eval_accuracy', 'epoch'))
    if not scalars['eval_accuracy']:
      raise UserError(f'--plot: {workdir!r} has no eval_accuracy in its TensorBoard logs; give '
                      'workdirs of runs that evaluated at least once')
    config, _ = read_workdir(workdir)
    runs.append((f"{os.path.basename(os.path.normpath(workdir))} ({config['model']['name']})",
                 scalars))
  longest = max(scalars['eval_accuracy'][-1][1] for _, scalars in runs)
  unit, seconds_per_unit = next((u, s) for u, s, limit in (
      ('seconds', 1, 120), ('minutes', 60, 120 * 60), ('hours', 3600, math.inf))
                                if longest < limit)

  fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
  for label, scalars in runs:
    accuracy = scalars['eval_accuracy']
    epochs = {step: value for step, _, value in scalars['epoch']}
    percent = [100 * value for _, _, value in accuracy]
    by_epoch.plot([epochs.get(step, math.nan) for step, _, _ in accuracy], percent,
                  marker='.', label=label)
    by_time.plot([seconds / seconds_per_unit for _, seconds, _ in accuracy], percent,
                 marker='.', label=label)
  for axes, xlabel in ((by_epoch, 'epoch'), (by_time, f'wall-clock time ({unit})')):
    axes.set_xlabel(xlabel)
    axes.set_ylabel('eval accuracy (%)')
    axes.grid(alpha=0.3)
    axes.legend(fontsize='small')
  by_epoch.set_title('Eval accuracy by epoch')
  by_time.set_title('Eval accuracy by training time')
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return [label for label, _ in runs]


# --- Records: the published figures, one small JSON file each under docs/runs/.

def hardware_description() -> str:
  """The accelerator(s) JAX sees and the host CPU, e.g. `cpu (AMD EPYC, 2 cores)`."""
  import jax  # pylint: disable=g-import-not-at-top

  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  host = f'{cpu}, {os.cpu_count()} cores'
  devices = jax.devices()
  if devices[0].platform == 'cpu':
    return f'CPU: {host}'
  return f'{len(devices)}x {devices[0].device_kind}; host {host}'


def busy_cores(seconds: float = 1.0) -> Optional[float]:
  """How many cores other processes keep busy: /proc/stat sampled over `seconds` while this
  process sleeps. None where /proc/stat does not exist."""
  import time  # pylint: disable=g-import-not-at-top

  def sample() -> tuple[int, int]:
    with open('/proc/stat') as f:
      fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle

  try:
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
  except OSError:
    return None
  if total1 == total0:
    return 0.0
  return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def load_note(busy: Optional[float]) -> str:
  """'shared with other jobs (...)' when other processes kept a quarter core or more busy."""
  if busy is None or busy < 0.25:
    return ''
  return (f'shared with other jobs (about {busy:.1f} of {os.cpu_count()} cores busy with other '
          'processes)')


def record_fields(command: str, notes: str = '',
                  busy: Optional[float] = None) -> dict[str, str]:
  """`command`, `hardware`, `date` (today) and `notes` of a new record; `busy` (other
  processes' cores, `busy_cores()`) adds the load note."""
  notes = '; '.join(n for n in (notes, load_note(busy)) if n)
  return {'command': command, 'hardware': hardware_description(),
          'date': datetime.date.today().isoformat(), 'notes': notes}


def write_record(record: dict, name: str, runs_dir: str = RUNS_DIR) -> str:
  os.makedirs(runs_dir, exist_ok=True)
  path = os.path.join(runs_dir, f'{name}.json')
  with open(path, 'w') as f:
    f.write(json.dumps(record, indent=2) + '\n')
  return path


def record_run(workdir: str, name: str, command: str, notes: str = '',
               runs_dir: str = RUNS_DIR) -> str:
  """Stores a finished run as `runs_dir/name.json`: its results.json and config.json with the
  command, hardware, date and notes. The hardware is this machine's: record where it ran."""
  config, results = read_workdir(workdir)
  if results is None:
    raise UserError(f'--record-run: {workdir!r} has no results.json; record a finished run')
  record = {'kind': 'run', 'name': name, **record_fields(command, notes),
            'results': results, 'config': config}
  return write_record(record, name, runs_dir)


def load_records(runs_dir: str = RUNS_DIR) -> list[dict]:
  records = []
  for path in sorted(glob.glob(os.path.join(runs_dir, '*.json'))):
    with open(path) as f:
      record = json.load(f)
    for key in ('kind', 'command', 'hardware', 'date'):
      if key not in record:
        raise UserError(f'{path}: a record needs {key!r} (see the header of {RESULTS_DOC})')
    record.setdefault('name', os.path.splitext(os.path.basename(path))[0])
    records.append(record)
  return records


# --- docs/RESULTS.md.

_DOC_HEADER = f"""# Results

<!-- Generated by `{REGENERATE}` from docs/runs/*.json and configs/.
     Do not edit by hand: add a record and regenerate. -->

Regenerate this file with `{REGENERATE}` (from the repository root). Every
figure comes from a record in `docs/runs/`, which names the command that produced it, the
hardware and the date; the notes say when the machine was shared with other jobs, which makes
timings noisy.

**Adding a figure.**
- A training run: `python -m jaxcls.report --record-run runs/NAME --command "python main.py ..."
  [--notes "..."]` stores `docs/runs/NAME.json` (run it on the machine that trained).
- A benchmark: add `--record NAME` to `benchmarks/throughput.py`, `loop_overhead.py` or
  `compile_time.py`; it writes `docs/runs/bench-NAME.json`.
- Then run `{REGENERATE}` and commit both.

**Record format** (`docs/runs/*.json`, small, no data): `kind` (`run` | `throughput` |
`loop_overhead` | `compile_time`), `name`, `command`, `hardware`, `date` (ISO), `notes`; a run
adds `results` (its `results.json`) and `config` (its `config.json`); a benchmark adds the JSON
line it printed.

**Columns.** Params is the Flax `params` count (trainable), for every row. Seed A's ResNet50b
figure (1,309,210) and all seed-B figures count the same way, but seed A's other rows are Keras
totals that include the BatchNorm moving mean and variance: that total is the
"{TOTAL_COLUMN}" column. FLOPs/2 is the multiply-accumulates of the conv and Dense layers at
batch 1 on the dataset's input shape (32x32x3 for CIFAR, 28x28x1 for Fashion-MNIST), as seed A
counts them. Top-1 and train img/s come from a recorded run whose config is the row's recipe
(data location, precision and loop cadence aside); "–" means no such run yet.
"""


_GPU_REFERENCE = '''Reference points: seed A's TF+XLA FP16 training on an RTX 3090 at batch 1024 ran
ResNet50b at 12,939 img/s, ResNet101b at 8,469, ResNet152b at 5,954 and DenseNet100k12 at
2,734. The throughput table above holds ours (`platform` gpu records), with the fraction of the
GPU's peak (MFU).
'''

_GPU_PENDING = '''
**Not measured yet**: no GPU was available for issue 4. On a GPU machine, each of these stores
its records (a few minutes per config; see `benchmarks/gpu_suite.sh`), then regenerate:

```bash
benchmarks/gpu_suite.sh throughput resnet50b wrn28_10
benchmarks/gpu_suite.sh throughput densenet100k12 shake_shake26_2x96d
benchmarks/gpu_suite.sh overhead
benchmarks/gpu_suite.sh compile
python -m jaxcls.report --results-doc
```
'''


def _seed_rows(rows: Sequence[tuple], records: Sequence[dict],
               dataset: Optional[str] = None) -> tuple[list[list[str]], list[str]]:
  """Table body for seed rows, and notes on recipes that are not in configs/ yet."""
  from jaxcls import models  # pylint: disable=g-import-not-at-top

  runs = [{'config': r['config'], 'results': r['results'], 'name': r['name']}
          for r in records if r['kind'] == 'run']
  body, missing = [], {}  # missing: config path -> (labels, registered?)
  for label, target, seed_top1, seed_rate in rows:
    path = target.split(':', 1)[0]
    if os.path.isfile(path):
      config = load_config(target)
      facts = config_facts(config)
      run = find_run(config, runs)
    else:
      name = os.path.splitext(os.path.basename(path))[0]
      registered = name in models.list_models()
      missing.setdefault(path, ([], registered))[0].append(label)
      facts, run = None, None
      if registered:
        shape, num_classes = KNOWN_DATASETS[dataset or 'cifar10']
        facts = model_facts(name, {}, shape, num_classes)
    row = Row(label, facts)
    if run is not None:
      row.top1 = run['results'].get('test_accuracy')
      row.images_per_sec = run['results'].get('train_images_per_sec')
      source = run['config'].get('dataset', {}).get('source', 'tfds')
      # The offline copies differ from TFDS's (CIFAR-10 as JPEG costs 1-3 points): say so.
      row.label += f" [{run['name']}" + ('' if source == 'tfds' else f', {source} data') + ']'
    seed = [DASH if seed_top1 is None else f'{seed_top1:.2f}%']
    if any(r[3] is not None for r in rows):
      seed.append(format_rate(seed_rate))
    body.append(row.cells(total=True) + seed)
  notes = []
  for path, (labels, registered) in missing.items():
    name = os.path.splitext(os.path.basename(path))[0]
    what = (f'; params and FLOPs/2 are those of the registered `{name}` preset' if registered
            else f', and no model `{name}` is registered yet')
    notes.append(f'`{path}` ({", ".join(labels)}) is not in configs/ yet{what}.')
  return body, notes


def _provenance(records: Sequence[dict]) -> str:
  lines = []
  for r in records:
    notes = f" {r['notes']}." if r.get('notes') else ''
    lines.append(f"- `{r['name']}`: `{r['command']}` on {r['hardware']}, {r['date']}.{notes}")
  return '\n'.join(lines) + '\n'


def _fmt(value: Any, digits: int = 2) -> str:
  if value is None:
    return DASH
  if isinstance(value, float):
    return f'{value:,.{digits}f}'
  return str(value)


def results_doc(runs_dir: str = RUNS_DIR, seed_a_rows: Sequence[tuple] = SEED_A_ROWS,
                seed_b_rows: Sequence[tuple] = SEED_B_ROWS) -> str:
  """The text of docs/RESULTS.md, from the records in `runs_dir` and the configs."""
  records = load_records(runs_dir)
  by_kind: dict[str, list[dict]] = {}
  for r in records:
    by_kind.setdefault(r['kind'], []).append(r)
  parts = [_DOC_HEADER]

  seed_a_header = list(COLUMNS) + [TOTAL_COLUMN, 'Seed A top-1', 'Seed A img/s (T4)']
  body, notes = _seed_rows(seed_a_rows, records)
  parts.append('\n## Seed A (CIFAR-10)\n\n'
               'Seed A\'s published rows (top-1, and train img/s on a Tesla T4 with FP16+XLA '
               'at batch 256) beside ours. Params, FLOPs/2 and the recipe come from '
               '`configs/`; a bracket names the record a Top-1 comes from.\n\n')
  parts.append(markdown_table(seed_a_header, body))
  if notes:
    parts.append('\n' + '\n'.join(f'- {n}' for n in notes) + '\n')

  seed_b_header = list(COLUMNS) + [TOTAL_COLUMN, 'Seed B top-1']
  body, notes = _seed_rows(seed_b_rows, records, SEED_B_DATASET)
  parts.append('\n## Seed B (Fashion-MNIST, 30,000 train / 40,000 eval)\n\n'
               'Seed B counts trainable parameters only, as the Params column does; FLOPs/2 is '
               'at 28x28x1.\n\n')
  parts.append(markdown_table(seed_b_header, body))
  if notes:
    parts.append('\n' + '\n'.join(f'- {n}' for n in notes) + '\n')

  runs = by_kind.get('run', [])
  parts.append('\n## Training runs\n\n')
  if runs:
    body = []
    for r in runs:
      res = r['results']
      facts = config_facts(ml_collections.ConfigDict(r['config']))
      wall = res.get('wall_time_s')
      body.append([f"`{r['name']}`", res.get('model', r['config']['model']['name']),
                   f"{res.get('dataset')} {res.get('train_split')} -> {res.get('eval_split')}",
                   format_percent(res.get('test_accuracy')),
                   format_percent(None if res.get('test_accuracy') is None
                                  else 1 - res['test_accuracy']),
                   format_count(facts.params), format_macs(facts.macs),
                   format_rate(res.get('train_images_per_sec')), str(res.get('epoch')),
                   DASH if wall is None else f'{wall / 60:.1f} min',
                   f"{res.get('device')} x{res.get('num_devices', 1)}, {res.get('dtype')}",
                   r['date']])
    parts.append(markdown_table(
        ['Run', 'Model', 'Data (train -> eval)', 'Top-1', 'Error', 'Params', 'FLOPs/2',
         'Train img/s', 'Epochs', 'Wall time', 'Device, dtype', 'Date'], body))
    parts.append('\n' + _provenance(runs))
  else:
    parts.append('No recorded runs yet.\n')

  throughput = by_kind.get('throughput', [])
  parts.append('\n## Train-step throughput (`benchmarks/throughput.py`)\n\n'
               'Images/s of the jitted train step (gather, augment, mix, forward, backward, '
               'optimizer) on synthetic data of the dataset\'s shape: the median over timed '
               'windows after a warm-up; `compile_s` is the first compile, reported apart. MFU '
               'is 3 x FLOPs/2 x 2 per image (forward + backward) over the device\'s peak '
               'dense FLOP/s of that dtype, when the peak is known.\n\n')
  if throughput:
    body = [[f"`{r['name']}`", r['config'], str(r['batch_size']), r['dtype'],
             format_rate(r['images_per_sec']), _fmt(r.get('compile_s'), 1),
             DASH if r.get('mfu') is None else f"{100 * r['mfu']:.1f}%",
             r['device'], r['date']] for r in throughput]
    parts.append(markdown_table(['Record', 'Config', 'Batch', 'dtype', 'img/s', 'compile_s',
                                 'MFU', 'Device', 'Date'], body))
    parts.append('\n' + _provenance(throughput))
  else:
    parts.append('No records yet.\n')

  gpu = [r for r in throughput if r.get('platform') == 'gpu']
  parts.append('\n## GPU\n\n' + _GPU_REFERENCE)
  if not gpu:
    parts.append(_GPU_PENDING)

  compile_records = by_kind.get('compile_time', [])
  parts.append('\n## First-step compile time (`benchmarks/compile_time.py`)\n\n'
               'Seconds to trace and lower, and to compile, the train step of each config at its '
               'own batch size (what a user waits for before the first step runs); nothing '
               'is executed.\n\n')
  if compile_records:
    body = [[f"`{r['name']}`", c['config'], str(c['batch_size']), c['dtype'],
             _fmt(c['lower_s'], 1), _fmt(c['compile_s'], 1), _fmt(c['total_s'], 1), r['device'],
             r['date']] for r in compile_records for c in r['results']]
    parts.append(markdown_table(['Record', 'Config', 'Batch', 'dtype', 'Trace + lower s',
                                 'Compile s', 'Total s', 'Device', 'Date'], body))
    parts.append('\n' + _provenance(compile_records))
  else:
    parts.append('No records yet.\n')

  overhead = by_kind.get('loop_overhead', [])
  parts.append('\n## Loop overhead (`benchmarks/loop_overhead.py`)\n\n'
               'Images/s of the whole training loop (`train_and_evaluate`: batch gathering, '
               'augmentation, metrics, logging, checkpoints at the configured cadence) divided by '
               'that of the bare jitted step run back to back on the same batches. Compilation '
               'and evaluation are timed separately and left out of both.\n\n')
  if overhead:
    body = [[f"`{r['name']}`", r['config'], f"{r['ratio']:.3f}",
             format_rate(r['loop_images_per_sec']), format_rate(r['bare_images_per_sec']),
             str(r['steps']), _fmt(r['checkpoint_s']), _fmt(r['eval_s']), _fmt(r['compile_s']),
             r['device'], r['date']] for r in overhead]
    parts.append(markdown_table(['Record', 'Config', 'Ratio', 'Loop img/s', 'Bare img/s',
                                 'Steps', 'Checkpoint s', 'Eval s (excluded)',
                                 'Compile s (excluded)', 'Device', 'Date'], body))
    parts.append('\n' + _provenance(overhead))
  else:
    parts.append('No records yet.\n')
  return ''.join(parts)


def write_results_doc(path: str = RESULTS_DOC, runs_dir: str = RUNS_DIR) -> str:
  text = results_doc(runs_dir)
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)
  return path


# --- Command line.

def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m jaxcls.report', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('targets', nargs='*', help='config files (with :variants) or workdirs')
  parser.add_argument('--csv', action='store_true', help='CSV with plain numbers')
  parser.add_argument('--out', help='write the table (or the doc) to this file')
  parser.add_argument('--total', action='store_true',
                      help=f'add the "{TOTAL_COLUMN}" column (Keras/seed-A style count)')
  parser.add_argument('--runs', help='look for runs of config targets in workdirs under this '
                      'directory (their config.json must match the recipe)')
  parser.add_argument('--plot', metavar='FILE.png',
                      help='plot eval accuracy of the workdir targets by epoch and by time')
  parser.add_argument('--results-doc', action='store_true',
                      help=f'rebuild {RESULTS_DOC} from {RUNS_DIR}/*.json and configs/')
  parser.add_argument('--record-run', metavar='WORKDIR',
                      help=f'store a finished run as {RUNS_DIR}/NAME.json')
  parser.add_argument('--name', help='record name for --record-run (default: the workdir name)')
  parser.add_argument('--command', help='the command that produced the run (--record-run)')
  parser.add_argument('--notes', default='', help='free-text notes for --record-run')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.record_run:
    if not args.command:
      raise UserError('--record-run: also give --command "the command that trained it"')
    name = args.name or os.path.basename(os.path.normpath(args.record_run))
    print(record_run(args.record_run, name, args.command, args.notes))
    return 0
  if args.results_doc:
    print(write_results_doc(args.out or RESULTS_DOC))
    return 0
  if not args.targets:
    raise UserError('give at least one target: a config file (configs/x.py[:variants]) or a '
                    'workdir')
  if args.plot:
    plot_runs(args.targets, args.plot)
    print(args.plot)
    return 0
  runs = scan_workdirs(args.runs) if args.runs else []
  rows = [row_from_target(t, runs) for t in args.targets]
  text = rows_csv(rows, args.total) if args.csv else rows_markdown(rows, args.total)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)
  else:
    sys.stdout.write(text)
  return 0


def cli() -> None:
  try:
    sys.exit(main())
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  cli()

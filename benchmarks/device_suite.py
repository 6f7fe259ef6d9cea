r"""A GPU window's one command: jaxcls's GPU figures in priority order, each kept as it lands.

    python benchmarks/device_suite.py [--deadline 480] [--steps env,throughput,...] [--out DIR]
    python benchmarks/device_suite.py --dry-run   # every step on a CPU, tiny, in 60 s

Steps, in this order; each has a budget, and starts only while the global deadline leaves it its
minimum (a step cut short keeps what it measured):
  env         jax version, device kind and memory; a bf16 matmul's TFLOP/s against the data
              sheet's peak (`common.PEAK_FLOPS`).
  throughput  the jitted train step (`throughput.measure`) of resnet50b, wrn28_10,
              densenet100k12, shake_shake26_2x96d and airbench94 (when registered) at batch
              1024: bf16 for all, then float32 for all, then batch 256 (the recipe batch of the
              Fashion-MNIST models) in both; MFU = 6 x MACs x img/s over the peak.
  torch       the PyTorch twins of resnet50b and wrn28_10 (`torch_twins.py`: torch.compile, bf16
              autocast, channels_last) at batch 1024, against jaxcls's bf16 step: the record
              holds the jaxcls/PyTorch ratio. Skipped where torch is missing.
  tta         `benchmarks/time_to_accuracy.py --config configs/airbench94.py --seeds 5`, when
              both files exist (issue 7); skipped otherwise.
  seed_rows   full seed rows in bf16, in order: WRN-28-10 on seed B's Fashion-MNIST split, then
              ResNet50b +SD +HTD +CutMix on CIFAR-10. Each is `main.py` in `.gpu/runs/ROW`, run
              until the deadline, then stopped with SIGTERM (it checkpoints); the next command
              resumes it. A finished row is recorded as a run.

Records go to docs/runs/ (`bench-gpu-*.json`, runs `gpu-*.json`) the moment each figure is
measured. With `--out` (default `$OUT`, the device tool's return folder) the suite also writes,
after every step: `records.tar` (every record of this command), `suite.json` (each step's
status and seconds), `logs.tar` (the seed rows' and tta's logs) and, for a seed row whose latest
checkpoint is under 16 MiB, `ckpt-ROW.tar`, which a later machine resumes from when it finds it
in `.gpu/ckpt/`. docs/GPU.md gives the command sequence for a GPU machine with no network.

Data comes from `--data` (default `.gpu/data`, filled by `benchmarks/pack_gpu.py --unpack`):
`cifar10-jpeg/` and `fashion_mnist/`; a seed row or tta whose data is missing is skipped.
"""

import argparse
import dataclasses
import importlib.util
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Optional

# Several JAX processes (this one, main.py for the seed rows) and PyTorch share the GPU: none
# may take 75% of its memory up front, as JAX does by default.
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from benchmarks import common, processes, throughput  # pylint: disable=g-import-not-at-top
from benchmarks.pack_gpu import folder_size  # pylint: disable=g-import-not-at-top
from jaxcls import models, report  # pylint: disable=g-import-not-at-top

STEPS = ('env', 'throughput', 'torch', 'tta', 'seed_rows')
RETURN_LIMIT = 16 * 2**20  # the device tool brings back files of at most 16 MiB


@dataclasses.dataclass(frozen=True)
class Plan:
  """Sizes and budgets (seconds) of one kind of run: the GPU window or the CPU dry run."""
  deadline: float
  budgets: dict[str, tuple[float, float]]  # step -> (minimum to start, budget)
  matmul_n: int
  # (model, config target, model fields) of the throughput step; the twins are among them.
  models: tuple[tuple[str, str, dict], ...]
  batches: tuple[int, ...]  # throughput batch sizes (the second for FMNIST models only)
  dtypes: tuple[str, ...]
  steps: int  # timed train steps per throughput figure
  window: int
  unit_s: float  # least time left in the throughput step to start another figure
  twins: tuple[str, ...]
  twin_batch: int
  prefix: str  # record names: PREFIX-throughput-...
  stop_grace_s: float  # SIGTERM this long before a seed row's deadline


GPU = Plan(
    deadline=480,
    budgets={'env': (5, 30), 'throughput': (30, 190), 'torch': (60, 110), 'tta': (40, 70),
             'seed_rows': (45, 1e9)},
    matmul_n=8192,
    models=(('resnet50b', 'configs/resnet50b.py', {}), ('wrn28_10', 'configs/wrn28_10.py', {}),
            ('densenet100k12', 'configs/densenet100k12.py', {}),
            ('shake_shake26_2x96d', 'configs/shake26_96d.py', {}),
            ('airbench94', 'configs/airbench94.py', {})),
    batches=(1024, 256), dtypes=('bfloat16', 'float32'), steps=20, window=5, unit_s=25,
    twins=('resnet50b', 'wrn28_10'), twin_batch=1024, prefix='gpu', stop_grace_s=40)

DRY_RUN = Plan(
    deadline=60,
    budgets={'env': (1, 5), 'throughput': (3, 20), 'torch': (3, 10), 'tta': (1, 4),
             'seed_rows': (10, 1e9)},
    matmul_n=128,
    # The twins' models, shrunk: one bottleneck unit a stage at width 4; WRN-10-1.
    models=(('resnet50b', 'configs/resnet50b.py', {'stage_sizes': (1, 1, 1, 1), 'base_width': 4}),
            ('wrn28_10', 'configs/wrn28_10.py', {'depth': 10, 'widen': 1})),
    batches=(8,), dtypes=('bfloat16',), steps=2, window=1, unit_s=1,
    twins=('resnet50b', 'wrn28_10'), twin_batch=8, prefix='dryrun', stop_grace_s=10)

FASHION_MNIST_MODELS = ('wrn28_10', 'shake_shake26_2x96d')


@dataclasses.dataclass(frozen=True)
class SeedRow:
  name: str
  config: str
  data: str  # folder under --data
  overrides: tuple[str, ...]


# Evaluation every 10 epochs instead of every epoch: the same training, 10x fewer passes over
# the 40,000 (Fashion-MNIST) or 10,000 (CIFAR-10) eval images. WRN-28-10's checkpoints (292 MB)
# every 5,000 steps (about a minute) rather than 1,000: a stop saves one anyway.
SEED_ROWS = (
    SeedRow('wrn28_10', 'configs/wrn28_10.py', 'fashion_mnist',
            ('--config.dataset.source=idx', '--config.eval_every_epochs=10',
             '--config.checkpoint_every_steps=5000')),
    SeedRow('resnet50b_sd_htd_cutmix', 'configs/resnet50b.py:sd,htd,cutmix', 'cifar10-jpeg',
            ('--config.dataset.source=folder', '--config.eval_every_epochs=10')),
)
# The dry run's stand-in: the quickstart on 256 digits for 3 epochs (12 steps).
DRY_SEED_ROWS = (
    SeedRow('quickstart', 'configs/quickstart.py', '',
            ('--config.dataset.train_split=train[:256]', '--config.num_epochs=3',
             '--config.schedule.warmup_epochs=0', '--config.log_every_steps=4',
             '--config.eval_every_epochs=0')),
)


class Suite:
  """Runs the steps against one deadline and keeps their records and statuses."""

  def __init__(self, plan: Plan, args: argparse.Namespace,
               clock: Callable[[], float] = time.monotonic):
    self.plan, self.args, self.clock = plan, args, clock
    self.start = clock()
    self.end = self.start + (args.deadline or plan.deadline)
    self.records: list[str] = []  # paths written by this command
    self.status: dict[str, dict[str, Any]] = {}
    self.throughput: dict[tuple[str, int, str], dict] = {}  # (model, batch, dtype) -> result
    self.log_dir = os.path.join(args.work, 'logs')

  def left(self) -> float:
    return self.end - self.clock()

  def run(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    for name in names:
      minimum, budget = self.plan.budgets[name]
      started = self.clock()
      if self.left() < minimum:
        self.status[name] = {'status': f'skipped: {self.left():.0f} s left, needs {minimum:.0f}'}
      else:
        step_end = min(self.end, started + budget)
        try:
          detail = getattr(self, f'step_{name}')(step_end)
          self.status[name] = {'status': 'done', **(detail or {})}
        except Exception as e:  # pylint: disable=broad-except  # one failure must not end all
          traceback.print_exc()
          reason = ' '.join(str(e).split())[:300]
          self.status[name] = {'status': f'failed: {type(e).__name__}: {reason}'}
      self.status[name]['seconds'] = round(self.clock() - started, 1)
      print(f'[suite] {name}: {self.status[name]}', file=sys.stderr, flush=True)
      self.bundle()
    return self.status

  # --- Records and the return folder.

  def emit(self, result: dict, kind: str, name: str, command: Sequence[str]) -> None:
    """Prints `result` and stores it as record `bench-NAME`, `command` being what reproduces
    it (the format of `common.emit`)."""
    print(json.dumps(result), flush=True)
    record = {'kind': kind, 'name': f'bench-{name}',
              **report.record_fields(shlex.join(['python', *command]),
                                     'measured by benchmarks/device_suite.py'), **result}
    self.records.append(report.write_record(record, f'bench-{name}', self.args.record_dir))

  def command(self, step: str) -> list[str]:
    return ['benchmarks/device_suite.py', *(['--dry-run'] if self.plan is DRY_RUN else []),
            '--steps', step]

  def bundle(self) -> None:
    """Writes what this command has produced so far into `--out`."""
    out = self.args.out
    if not out:
      return
    os.makedirs(out, exist_ok=True)
    _tar(os.path.join(out, 'records.tar'), [(p, os.path.basename(p)) for p in self.records
                                            if os.path.exists(p)])
    if os.path.isdir(self.log_dir):
      _tar(os.path.join(out, 'logs.tar'),
           [(os.path.join(self.log_dir, f), f) for f in sorted(os.listdir(self.log_dir))])
    summary = {'deadline_s': self.end - self.start, 'elapsed_s': self.clock() - self.start,
               'steps': self.status, 'records': [os.path.basename(p) for p in self.records]}
    with open(os.path.join(out, 'suite.json'), 'w') as f:
      json.dump(summary, f, indent=2)

  # --- Steps.

  def step_env(self, step_end: float) -> dict:
    del step_end
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    n = self.plan.matmul_n
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)  # zeros run faster
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, a).block_until_ready()
    times = []
    for _ in range(10):
      start = time.perf_counter()
      matmul(a, a).block_until_ready()
      times.append(time.perf_counter() - start)
    tflops = 2 * n**3 / float(np.median(times)) / 1e12
    peak = common.peak_flops(device.device_kind, 'bfloat16')
    result = {
        'benchmark': 'device_env', **common.describe(),
        'memory_gb': stats.get('bytes_limit', 0) / 1e9 or None,
        'python': sys.version.split()[0], 'versions': _versions(),
        'matmul_n': n, 'matmul_bf16_tflops_per_sec': tflops,
        'peak_bf16_tflops_per_sec': None if peak is None else peak / 1e12,
        'matmul_fraction_of_peak': None if peak is None else tflops * 1e12 / peak,
    }
    self.emit(result, 'device_env', f'{self.plan.prefix}-env', self.command('env'))
    return {'device': result['device'], 'matmul_bf16_tflops_per_sec': round(float(tflops), 1)}

  def throughput_units(self) -> list[tuple[str, int, str]]:
    """(model, batch, dtype) in the order they are measured."""
    registered = set(models.list_models())
    chosen = [m for m, _, _ in self.plan.models if m in registered]
    units = []
    first, *others = self.plan.batches
    for batch, fmnist_only in [(first, False)] + [(b, True) for b in others]:
      for dtype in self.plan.dtypes:
        units += [(m, batch, dtype) for m in chosen
                  if not fmnist_only or m in FASHION_MNIST_MODELS]
    return units

  def config(self, model: str, batch: int, dtype: str) -> tuple[Any, list[str]]:
    """The config of `model`'s throughput figure, and the throughput.py flags that make it."""
    target, fields = next((t, f) for m, t, f in self.plan.models if m == model)
    if not os.path.isfile(os.path.join(REPO, target.split(':')[0])):
      target = f'seed_a:{model}'  # a registered model whose config file is not written yet
    overrides = [f'--config.model.{k}={v}'.replace(' ', '') for k, v in fields.items()]
    config = common.load_config(argparse.Namespace(config=target, dtype=dtype,
                                                   batch_size=batch), [])
    config.model.update(fields)
    return config, ['--config', target, '--batch-size', str(batch), '--dtype', dtype,
                    '--steps', str(self.plan.steps), '--window', str(self.plan.window),
                    *overrides]

  def measure_throughput(self, model: str, batch: int, dtype: str) -> dict:
    """jaxcls's train step of `model` (once per command), recorded."""
    if (model, batch, dtype) in self.throughput:
      return self.throughput[(model, batch, dtype)]
    config, flags = self.config(model, batch, dtype)
    result = throughput.measure(config, name=flags[1], steps=self.plan.steps,
                                window=self.plan.window)
    _release_memory()
    argv = ['benchmarks/throughput.py', *flags]
    short = 'bf16' if dtype == 'bfloat16' else 'f32'
    self.emit(result, 'throughput', f'{self.plan.prefix}-throughput-{model}-b{batch}-{short}',
              argv)
    self.throughput[(model, batch, dtype)] = result
    return result

  def step_throughput(self, step_end: float) -> dict:
    done, skipped = [], []
    for model, batch, dtype in self.throughput_units():
      label = f'{model} b{batch} {dtype}'
      if step_end - self.clock() < self.plan.unit_s:
        skipped.append(label)
        continue
      result = self.measure_throughput(model, batch, dtype)
      mfu = result['mfu']
      done.append(f"{label}: {result['images_per_sec']:,.0f} img/s"
                  + ('' if mfu is None else f', MFU {100 * mfu:.1f}%'))
    return {'measured': done, 'skipped (time)': skipped}

  def step_torch(self, step_end: float) -> dict:
    if importlib.util.find_spec('torch') is None:
      return {'skipped': 'torch is not installed'}
    from benchmarks import torch_twins  # pylint: disable=g-import-not-at-top

    done, skipped = [], []
    for twin in self.plan.twins:
      if step_end - self.clock() < self.plan.unit_s:
        skipped.append(twin)
        continue
      batch = self.plan.twin_batch
      config, _ = self.config(twin, batch, 'bfloat16')
      fields = next(f for m, _, f in self.plan.models if m == twin)
      image_shape, num_classes = report.input_spec(config)
      ours = self.measure_throughput(twin, batch, 'bfloat16')
      facts = report.model_facts(twin, report.model_overrides(config), image_shape, num_classes)
      aug = config.augment
      channels = image_shape[-1]
      augment = torch_twins.Augment(
          aug.crop_padding, aug.pad_mode, aug.flip,
          tuple(aug.mean or (127.5,) * channels), tuple(aug.std or (64.0,) * channels))
      theirs = torch_twins.measure(twin, batch_size=batch, image_shape=image_shape,
                                   augment=augment, num_classes=num_classes,
                                   steps=self.plan.steps, window=self.plan.window, **fields)
      _release_memory()
      if (theirs['twin_params'], theirs['twin_flops_per_image']) != (facts.params,
                                                                     2 * facts.macs):
        raise AssertionError(f'the twin of {twin} is not the same network: params '
                             f"{theirs['twin_params']:,} vs {facts.params:,}, FLOPs "
                             f"{theirs['twin_flops_per_image']:,} vs {2 * facts.macs:,}")
      result = {
          'benchmark': 'torch_twin', 'model': twin, 'config': ours['config'], 'batch_size': batch,
          'jaxcls_images_per_sec': ours['images_per_sec'],
          'torch_images_per_sec': theirs['images_per_sec'],
          'ratio': ours['images_per_sec'] / theirs['images_per_sec'],
          'params': facts.params, 'jaxcls_dtype': 'bfloat16', 'jaxcls_compile_s':
          ours['compile_s'], 'jaxcls_mfu': ours['mfu'],
          **{f'torch_{k}': v for k, v in theirs.items() if k not in ('benchmark', 'model')},
          **common.describe(),
      }
      self.emit(result, 'torch_twin', f'{self.plan.prefix}-torch-{twin}-b{batch}',
                self.command('torch'))
      done.append(f"{twin}: jaxcls/PyTorch {result['ratio']:.2f}")
    return {'measured': done, 'skipped (time)': skipped}

  def step_tta(self, step_end: float) -> dict:
    script = os.path.join(REPO, 'benchmarks', 'time_to_accuracy.py')
    config = os.path.join(REPO, 'configs', 'airbench94.py')
    missing = [os.path.relpath(p, REPO) for p in (script, config) if not os.path.isfile(p)]
    if missing:
      return {'skipped': f"not written yet: {', '.join(missing)} (issue 7)"}
    if self.plan is DRY_RUN:  # its own test runs it small; here: does it start?
      command = [sys.executable, script, '--help']
    else:
      cifar = os.path.join(self.args.data, 'cifar10-jpeg')
      if not os.path.isdir(cifar):
        return {'skipped': f'no CIFAR-10 at {cifar}'}
      name = f'{self.plan.prefix}-tta-airbench94'
      command = [sys.executable, script, '--config', config, '--seeds', '5', '--record', name,
                 '--record-dir', self.args.record_dir, '--config.dataset.source=folder',
                 f'--config.dataset.path={cifar}']
      self.records.append(os.path.join(self.args.record_dir, f'bench-{name}.json'))
    status = self.child(command, 'tta', step_end - self.clock())
    return {'exit': status}

  def step_seed_rows(self, step_end: float) -> dict:
    rows = DRY_SEED_ROWS if self.plan is DRY_RUN else SEED_ROWS
    reached = {}
    for row in rows:
      if step_end - self.clock() < self.plan.budgets['seed_rows'][0]:
        reached[row.name] = 'not started (time)'
        continue
      reached[row.name] = self.seed_row(row, step_end)
      self.bring_back(row)
    return {'rows': reached}

  def seed_row(self, row: SeedRow, step_end: float) -> str:
    workdir = os.path.join(self.args.work, 'runs', row.name)
    saved = os.path.join(self.args.work, 'ckpt', f'ckpt-{row.name}.tar')
    if not os.path.isdir(workdir) and os.path.isfile(saved):
      with tarfile.open(saved) as tar:
        tar.extractall(workdir, filter='data')
    data = []
    if row.data:
      path = os.path.join(self.args.data, row.data)
      if not os.path.isdir(path):
        return f'skipped: no data at {path}'
      data = [f'--config.dataset.path={os.path.relpath(path, REPO)}']
    words = ['main.py', '--config', row.config, f'--workdir={os.path.relpath(workdir, REPO)}',
             '--config.model.dtype=bfloat16', *row.overrides, *data]
    results = os.path.join(workdir, 'results.json')
    if not os.path.exists(results):
      status = self.child([sys.executable, *words], row.name, step_end - self.clock(),
                          stop_grace=self.plan.stop_grace_s)
      if status == 'killed':  # still inside a step (or a save) at the deadline
        return (f'killed at the deadline, nothing saved since the last checkpoint (log: '
                f'logs/{row.name}.log)')
      if status not in (0, 'stopped'):
        return f'failed: exit {status} (log: logs/{row.name}.log)'
    if not os.path.exists(results):
      return 'stopped: ' + _last_stop(os.path.join(self.log_dir, f'{row.name}.log'))
    name = f'{self.plan.prefix}-{row.name}-bf16'
    path = report.record_run(workdir, name, shlex.join(['python', *words]),
                             'measured by benchmarks/device_suite.py', self.args.record_dir)
    if path not in self.records:
      self.records.append(path)
    finished = json.loads(open(results).read())
    return f"finished: {100 * finished['test_accuracy']:.2f}% ({name})"

  def bring_back(self, row: SeedRow) -> None:
    """Puts the row's latest checkpoint into `--out` when it can come back (< 16 MiB)."""
    workdir = os.path.join(self.args.work, 'runs', row.name)
    checkpoints = os.path.join(workdir, 'checkpoints')
    if not self.args.out or not os.path.isdir(checkpoints):
      return
    steps = sorted((int(s) for s in os.listdir(checkpoints) if s.isdigit()), reverse=True)
    if not steps:
      return
    members = [(os.path.join(checkpoints, str(steps[0])), f'checkpoints/{steps[0]}')]
    members += [(os.path.join(workdir, f), f) for f in ('config.json', 'results.json')
                if os.path.exists(os.path.join(workdir, f))]
    size = sum(folder_size(path) for path, _ in members)
    if size > RETURN_LIMIT * 0.95:
      print(f'[suite] {row.name}: checkpoint of step {steps[0]} is {size / 2**20:.0f} MiB, too '
            'big to come back; it stays on this machine only', file=sys.stderr)
      return
    _tar(os.path.join(self.args.out, f'ckpt-{row.name}.tar'), members)

  def child(self, command: list[str], name: str, seconds: float,
            stop_grace: Optional[float] = None) -> Any:
    """Runs `command` in its own process group, output to logs/NAME.log, for `seconds`.

    With `stop_grace`, SIGTERM comes that long before the end (the run saves a checkpoint and
    exits) and returns 'stopped'; anything still running at the end is killed ('killed').
    """
    os.makedirs(self.log_dir, exist_ok=True)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(
        [REPO, *filter(None, [os.environ.get('PYTHONPATH')])]), 'PYTHONUNBUFFERED': '1'}
    with open(os.path.join(self.log_dir, f'{name}.log'), 'ab') as log, processes.spawned(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT) as process:
      try:
        if stop_grace is not None and seconds > stop_grace:
          try:
            return process.wait(seconds - stop_grace)
          except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(stop_grace)
            return 'stopped'
        return process.wait(max(seconds, 1))
      except subprocess.TimeoutExpired:
        return 'killed'  # `spawned` kills the group on the way out


def _last_stop(log: str) -> str:
  """'step N of M' from the run's last "Stopped by ... at step N of M" line."""
  try:
    with open(log, errors='replace') as f:
      lines = [line for line in f if 'Stopped by' in line]
  except OSError:
    return 'no log'
  if not lines:
    return 'no checkpoint line in the log'
  text = lines[-1]
  return text[text.index('at step') + 3:].split(',')[0].strip() if 'at step' in text else text


def _versions() -> dict[str, Optional[str]]:
  from importlib import metadata  # pylint: disable=g-import-not-at-top

  versions = {}
  for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'clu', 'ml-collections',
               'numpy', 'tensorboard', 'torch', 'tensorflow'):
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def _release_memory() -> None:
  """Frees what one measurement compiled and allocated before the next (the GPU is shared by
  both frameworks and the seed rows' processes)."""
  import gc  # pylint: disable=g-import-not-at-top

  gc.collect()
  jax.clear_caches()
  if 'torch' in sys.modules and sys.modules['torch'].cuda.is_available():
    sys.modules['torch'].cuda.empty_cache()


def _tar(path: str, members: Sequence[tuple[str, str]]) -> None:
  """Writes an uncompressed tar of `members` ((path, name in the archive)) atomically."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w') as tar:
    for source, name in members:
      tar.add(source, arcname=name)
  tmp = f'{path}.tmp'
  with open(tmp, 'wb') as f:
    f.write(buffer.getvalue())
  os.replace(tmp, path)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, dict[str, Any]]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dry-run', action='store_true',
                      help='every step on a CPU with tiny sizes and a 60-second deadline')
  parser.add_argument('--steps', default=','.join(STEPS),
                      help=f'comma-separated subset of {",".join(STEPS)}, run in this order')
  parser.add_argument('--deadline', type=float,
                      help='seconds for the whole command (default 480; dry run 60)')
  parser.add_argument('--out', default=os.environ.get('OUT'),
                      help='folder for records.tar, suite.json, logs.tar, ckpt-*.tar '
                      '(default $OUT)')
  parser.add_argument('--work', default=os.path.join(REPO, '.gpu'),
                      help='seed-row workdirs (runs/), logs (logs/) and returned checkpoints '
                      '(ckpt/) (default .gpu)')
  parser.add_argument('--data', default=os.path.join(REPO, '.gpu', 'data'),
                      help='cifar10-jpeg/ and fashion_mnist/ (default .gpu/data)')
  parser.add_argument('--record-dir',
                      help='where records go (default docs/runs; dry run: OUT/runs or WORK/runs)')
  args = parser.parse_args(argv)
  names = [s.strip() for s in args.steps.split(',') if s.strip()]
  unknown = [s for s in names if s not in STEPS]
  if unknown:
    parser.error(f'--steps: unknown {", ".join(unknown)}; choose from {", ".join(STEPS)}')
  plan = DRY_RUN if args.dry_run else GPU
  if args.record_dir is None:
    args.record_dir = (os.path.join(args.out or args.work, 'runs') if args.dry_run
                       else os.path.join(REPO, report.RUNS_DIR))
  if not args.dry_run:  # compiled programs outlive a command on a warm machine: resumes reuse
    cache = os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                                  os.path.join(args.work, 'xla-cache'))
    jax.config.update('jax_compilation_cache_dir', cache)
  suite = Suite(plan, args)
  print(f'[suite] {jax.devices()[0].device_kind}, deadline {suite.left():.0f} s, steps '
        f'{",".join(names)}', file=sys.stderr, flush=True)
  status = suite.run([s for s in STEPS if s in names])
  print(json.dumps(status), flush=True)
  return status


if __name__ == '__main__':
  common.cli(main)

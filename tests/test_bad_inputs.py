"""Bad input, table-driven: configs, overrides, data, checkpoints, the workdir.

Every case must end in one `error:` line on stderr that names the field or path and the fix, a
non-zero exit, no traceback, and leave the checkpoints of the workdir it ran in byte for byte as
they were. Each case runs in its own copy of a workdir that holds a finished tiny run.

`CLI_CASES` run `main.py` in subprocesses, several at a time; they cover everything the flag
parser rejects and one case of each later kind. `RUN_CASES` call `main.run` in process, the same
function `main.py` calls after parsing its flags, with the config the flags would have built.
"""
# pylint: disable=redefined-outer-name  # pytest fixtures

import concurrent.futures
import gzip
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

import main
from tests.conftest import tiny_config
from tests.conftest import xla_cache  # pylint: disable=unused-import
from tests.test_faults import CONFIG, CONFIG_FILE
from jaxcls import train

REPO = pathlib.Path(__file__).resolve().parents[1]

# (id, extra argv; `{data}` is the bad-data directory, `{workdir}` the case's workdir,
#  `{file}` a regular file; expected text of the error line, a regular expression).
CLI_CASES = [
    ('unknown config key', ['--config.optim.learning_rate=0.1'],
     r"--config.optim.learning_rate: no such config field 'learning_rate'"),
    ('misspelt config key', ['--config.model.nme=resnet18'],
     r"no such config field 'nme' \(Did you mean \"name\"\?\)"),
    ('unknown config file', ['--config=configs/nosuch.py'],
     r"--config: no such config file '.*configs/nosuch.py'"),
    ('unknown recipe variant', ['--config=configs/resnet50b.py:fast'],
     r"unknown variant 'fast'; choose from: "),
    ('wrong-typed integer', ['--config.batch_size=abc'], r'batch_size.*abc'),
    ('wrong-typed float', ['--config.optim.lr=fast'], r'lr.*fast'),
    ('unknown flag', ['--workers=4'], r'Unknown command line flag .workers.'),
    ('unknown model', ['--config.model.name=resnet19'],
     r"model.name: unknown model 'resnet19'; choose one of: .*resnet18"),
    ('missing data path', ['--config.dataset.source=folder', '--config.dataset.path=/no/such'],
     r"dataset.path: '/no/such' does not exist; check the path"),
    ('unwritable workdir', ['--workdir={file}/run'],
     r'--workdir: cannot write to .*; choose a writable directory'),
    ('checkpoint from another model', ['--config.model.base_width=8'],
     r"holds checkpoints of model 'resnet18' whose shapes differ .*use a new --workdir"),
    ('batch not divisible by the devices', ['--config.batch_size=30'],
     r'batch_size: 30 does not divide over the 4 devices; use a multiple of 4 '
     r'\(e.g. --config.batch_size=28\)'),
    ('bad multi-process flags',
     ['--coordinator_address=localhost:1', '--num_processes=2', '--process_id=5'],
     r'--coordinator_address/--num_processes/--process_id: cannot start .*ids 0..num_processes-1'),
]

# (id, config overrides, data setup or None, expected error text).
RUN_CASES = [
    ('unknown dataset', {'dataset.name': 'mnist'}, None,
     r"dataset.name: no embedded dataset 'mnist'; with dataset.source='embedded' choose one of"),
    ('unknown data source', {'dataset.source': 'web'}, None,
     r"dataset.source: unknown source 'web'; choose one of: tfds, folder, idx, embedded"),
    ('unknown schedule', {'schedule.name': 'linear'}, None,
     r"schedule.name: unknown schedule 'linear'; choose one of: constant, step, htd, cosine"),
    ('unknown nan policy', {'nan_policy': 'ignore'}, None,
     r"nan_policy: unknown policy 'ignore'; choose one of: stop, skip"),
    ('negative batch size', {'batch_size': -32}, None,
     r'batch_size: must be a positive integer, got -32'),
    ('zero epochs', {'num_epochs': 0}, None, r'num_epochs: must be a positive integer, got 0'),
    ('negative learning rate', {'optim.lr': -0.1}, None,
     r'optim.lr: must be a finite number >= 0, got -0.1'),
    ('momentum of 1 or more', {'optim.momentum': 1.5}, None,
     r'optim.momentum: must be in \[0, 1\), got 1.5'),
    ('negative cutout', {'augment.cutout_size': -4}, None,
     r'augment.cutout_size: must be a non-negative integer'),
    ('warm-up longer than the run', {'schedule.warmup_epochs': 10.0}, None,
     r'schedule.warmup_epochs: 10.0 leaves no steps after warm-up in 2 epochs'),
    ('mixup alpha 0', {'mix.name': 'mixup', 'mix.alpha': 0.0}, None, r'mix.alpha: must be > 0'),
    ('label smoothing 1', {'label_smoothing': 1.0}, None, r'label_smoothing: must be in \[0, 1\)'),
    ('PatchUp even block size', {'mix.name': 'patchup_hard', 'mix.patchup_block_size': 4}, None,
     r'mix.patchup_block_size: must be an odd positive integer'),
    # Found when the first step is traced, inside jit: still one clean error line.
    ('PatchUp past the last stage', {'mix.name': 'patchup_soft', 'mix.patchup_blocks': 9},
     'fresh', r'mix.patchup_blocks: 9 hidden points, but the model has 4 stages'),
    ('crop padding larger than the image', {'augment.crop_padding': 40}, None,
     r'augment.crop_padding: 40 is too large for 32x32 images'),
    ('eval split typo', {'dataset.eval_split': 'tset'}, None, r"dataset.eval_split: .*'tset'"),
    ('batch larger than the train split', {'batch_size': 512}, None,
     r'batch_size: 512 is larger than the 256 training images of train\[:256\]'),
    ('labels out of range', {'dataset.num_classes': 5}, None,
     r'dataset.num_classes: dataset.train_split .* has label \d, outside \[0, 5\)'),
    ('empty data folder', {}, 'empty', r'dataset.path: no .png/.jpg/.jpeg/.bmp images in '),
    ('mixed image sizes', {}, 'mixed',
     r"dataset.path: image 'train/1/b.png' is 16x16 but 'train/0/a.png' is 8x8; every image "
     r'must have one size'),
    ('corrupt image', {}, 'corrupt', r"dataset.path: cannot decode image 'train/1/b.png' .*fix"),
    ('unreadable image (dangling link)', {}, 'dangling',
     r"dataset.path: cannot read '.*train/1/b.png' \(No such file or directory\); fix or remove"),
    ('corrupt zip member', {}, 'zip', r"dataset.path: cannot read 'train/0/a.png' from .*fix"),
    ('truncated idx file', {}, 'idx',
     r"dataset.path: idx file '.*train-images-idx3-ubyte' is truncated .*download it again"),
    ('init_from a missing run', {'init_from': '/no/such/run'}, 'fresh',
     r"init_from: '/no/such/run' does not exist; give the workdir of a finished run"),
    ('checkpoint directory is a file', {}, 'ckpt-file',
     r'checkpoints: cannot open in .*/checkpoints .*make the directory writable'),
]


def _image(path: pathlib.Path, size: int) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size, size), 128, np.uint8)).save(path)


def _make_data(root: pathlib.Path, kind: str) -> dict:
  """Writes the bad data of `kind` under `root`; returns the config overrides that read it."""
  folder = {'dataset.source': 'folder', 'dataset.path': str(root), 'dataset.name': kind,
            'dataset.train_split': 'train', 'dataset.eval_split': 'test'}
  for split in ('train', 'test'):
    for label in ('0', '1'):
      _image(root / split / label / 'a.png', 8)
  if kind == 'empty':
    shutil.rmtree(root)
    root.mkdir()
  elif kind == 'mixed':
    _image(root / 'train' / '1' / 'b.png', 16)
  elif kind == 'corrupt':
    (root / 'train' / '1' / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
  elif kind == 'dangling':
    (root / 'train' / '1' / 'b.png').symlink_to(root / 'gone.png')
  elif kind == 'zip':
    archive = root.parent / f'{root.name}.zip'
    shutil.make_archive(str(archive.with_suffix('')), 'zip', root)
    data = bytearray(archive.read_bytes())
    start = data.index(b'train/0/a.png') + len('train/0/a.png')
    data[start + 20:start + 40] = bytes(20)  # zeroes inside the member's data: CRC mismatch
    archive.write_bytes(bytes(data))
    return {**folder, 'dataset.path': str(archive)}
  elif kind == 'idx':
    shutil.rmtree(root)
    root.mkdir()
    for prefix, n in (('train', 40), ('t10k', 20)):
      header = (0x0803).to_bytes(4, 'big') + b''.join(x.to_bytes(4, 'big') for x in (n, 8, 8))
      images = header + bytes(n * 64)
      if prefix == 'train':
        images = images[:-100]  # cut short, as a failed download leaves it
      (root / f'{prefix}-images-idx3-ubyte').write_bytes(images)
      labels = (0x0801).to_bytes(4, 'big') + n.to_bytes(4, 'big') + bytes(range(10)) * (n // 10)
      with gzip.open(root / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
        f.write(labels)
    return {**folder, 'dataset.source': 'idx'}
  return folder


def _checkpoint_bytes(workdir: pathlib.Path) -> dict:
  return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted((workdir / 'checkpoints').rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def finished_run(xla_cache, tmp_path_factory):
  """A workdir holding a finished tiny run (checkpoints 4 .. 16), and its checkpoint hashes."""
  del xla_cache
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  train.train_and_evaluate(tiny_config(**CONFIG), str(workdir))
  return workdir, _checkpoint_bytes(workdir)


def _copy(finished_run, directory: pathlib.Path) -> pathlib.Path:
  workdir = directory / 'run'
  shutil.copytree(finished_run[0], workdir)
  return workdir


def _assert_one_error_line(stderr: str, expected: str) -> None:
  assert 'Traceback' not in stderr, stderr
  lines = [line for line in stderr.splitlines() if line.strip()]
  assert lines, 'no output'
  assert lines[-1].startswith('error: '), stderr[-2000:]
  assert '\n' not in lines[-1]
  assert re.search(expected, lines[-1]), lines[-1]


@pytest.fixture(scope='module')
def cli_results(finished_run, tmp_path_factory):
  """Every CLI case run at once (4 at a time): id -> (returncode, stderr, workdir)."""
  root = tmp_path_factory.mktemp('cli')
  config = root / 'tiny_config.py'
  config.write_text(CONFIG_FILE)
  regular_file = root / 'a-file'
  regular_file.write_text('')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO)}

  def run(case):
    name, args, _ = case
    workdir = _copy(finished_run, root / name.replace(' ', '_'))
    argv = [sys.executable, str(REPO / 'main.py'), f'--config={config}',
            f'--workdir={workdir}']
    argv += [a.format(workdir=workdir, file=regular_file) for a in args]
    case_env = env
    if name == 'batch not divisible by the devices':
      case_env = {**env, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
    done = subprocess.run(argv, capture_output=True, text=True, env=case_env, cwd=REPO,
                          timeout=300, check=False)
    return name, (done.returncode, done.stderr, workdir)

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    return dict(pool.map(run, CLI_CASES))


@pytest.mark.parametrize('name,args,expected', CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_case(cli_results, finished_run, name, args, expected):
  del args
  returncode, stderr, workdir = cli_results[name]
  assert returncode != 0
  _assert_one_error_line(stderr, expected)
  assert _checkpoint_bytes(workdir) == finished_run[1]


def _config(overrides: dict):
  config = tiny_config(**CONFIG)
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    target = config
    for p in path:
      target = target[p]
    target[leaf] = value
  config.lock()
  return config


@pytest.mark.parametrize('name,overrides,data,expected', RUN_CASES,
                         ids=[c[0] for c in RUN_CASES])
def test_run_case(finished_run, tmp_path, capsys, name, overrides, data, expected):
  del name
  workdir = _copy(finished_run, tmp_path)
  if data == 'fresh':  # a new run: init_from is read only when the workdir has no checkpoint
    workdir = tmp_path / 'fresh'
  elif data == 'ckpt-file':
    workdir = tmp_path / 'fresh'
    workdir.mkdir()
    (workdir / 'checkpoints').write_text('')
  elif data is not None:
    overrides = {**_make_data(tmp_path / data, data), **overrides}
  status = main.run(_config(overrides), str(workdir))
  assert status != 0
  _assert_one_error_line(capsys.readouterr().err, expected)
  if workdir.name == 'run':
    assert _checkpoint_bytes(workdir) == finished_run[1]


def test_failure_while_writing_a_checkpoint(finished_run, tmp_path, capsys, monkeypatch):
  """Resumed at step 12, the save of step 16 fails: one line naming the directory, steps 4-12
  as they were."""
  workdir = _copy(finished_run, tmp_path)
  shutil.rmtree(workdir / 'checkpoints' / '16')
  (workdir / 'results.json').unlink()
  before = _checkpoint_bytes(workdir)
  save = ocp.CheckpointManager.save

  def fail(self, step, *args, **kwargs):
    if step == 16:
      raise PermissionError(13, 'Permission denied', str(workdir / 'checkpoints' / '16'))
    return save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'save', fail)
  assert main.run(_config({}), str(workdir)) == 2
  _assert_one_error_line(capsys.readouterr().err,
                         rf'checkpoints: cannot save step 16 in {workdir}/checkpoints '
                         r'\(PermissionError: .*Permission denied.*\); free disk space or make '
                         r'the directory writable, then rerun')
  assert _checkpoint_bytes(workdir) == before

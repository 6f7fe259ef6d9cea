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
import socket

import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

import main
from tests.conftest import run_main, tiny_config
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
     r'holds a run with other settings \(model.base_width: 4 -> 8\); it was left as it is'),
    ('batch not divisible by the devices', ['--config.batch_size=30'],
     r'batch_size: 30 does not divide over the 4 devices; use a multiple of 4 '
     r'\(e.g. --config.batch_size=28\)'),
    ('bad multi-process flags',
     ['--coordinator_address=localhost:1', '--num_processes=2', '--process_id=5'],
     r'--coordinator_address/--num_processes/--process_id: cannot start .*ids 0..num_processes-1'),
    ('stray positional argument', ['runs/x'],
     r"unexpected argument 'runs/x'; every option is a flag: --config=FILE\[:variants\], "),
    ('empty workdir (an unset shell variable)', ['--workdir='],
     r"--workdir: empty \(''\); give a directory, or leave the flag out for the default "
     r'runs/tiny_config'),
    ('variants for a config that takes none', ['--config={config}:fast'],
     r'--config .*tiny_config.py:fast: .*tiny_config.py takes no variants; drop ":fast" and change '
     r'fields with --config.FIELD=VALUE'),
    ('config file without get_config', ['--config={no_get_config}'],
     r'--config: .*no_get_config.py defines no get_config\(\); a config file defines '
     r'get_config\(\)'),
    ('config file with a syntax error', ['--config={broken}'],
     r'invalid syntax .*broken.py, line 1'),
    ('seed beyond 64 bits', ['--config.seed=99999999999999999999'],
     r'seed: must be an integer from 0 to 4294967295 \(JAX random keys keep 32 bits\), got '
     r'99999999999999999999'),
    ('step factor nan', ['--config.schedule.name=step', '--config.schedule.factor=nan'],
     r'schedule.factor: must be a finite number > 0 .*got nan'),
    ('platform without its device', ['--config.num_epochs=1'],
     r"JAX_PLATFORMS=cuda: JAX cannot start 'cuda' on this machine \(.*\); what starts here: "
     r'cpu \(1 device\); unset JAX_PLATFORMS'),
    ('integer field given a fraction', ['--config.batch_size=1.5'], r'batch_size.*1.5'),
]
# Environment of a CLI case, over the default (CPU, the repository on PYTHONPATH).
CLI_ENV = {
    'batch not divisible by the devices': {'XLA_FLAGS': '--xla_force_host_platform_device_count=4'},
    'platform without its device': {'JAX_PLATFORMS': 'cuda'},
}

# (id, config overrides, data setup or None, expected error text).
RUN_CASES = [
    ('checkpoint of another model, no config.json', {'model.base_width': 8}, 'no-config-json',
     r"holds checkpoints of model 'resnet18' whose shapes differ .*use a new --workdir"),
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
    ('zero epochs', {'num_epochs': 0}, None, r'num_epochs: must be a finite number > 0 .*got 0'),
    ('negative learning rate', {'optim.lr': -0.1}, None,
     r'optim.lr: must be a finite number >= 0, got -0.1'),
    ('momentum of 1 or more', {'optim.momentum': 1.5}, None,
     r'optim.momentum: must be in \[0, 1\) \(0 turns momentum off\), got 1.5'),
    ('negative cutout', {'augment.cutout_size': -4}, None,
     r'augment.cutout_size: must be a non-negative integer'),
    ('warm-up longer than the run', {'schedule.warmup_epochs': 10.0}, None,
     r'schedule.warmup_epochs: 10 leaves no steps after warm-up in 2 epochs; use fewer warm-up '
     r'epochs \(e.g. --config.schedule.warmup_epochs=1\)'),
    ('one-epoch quickstart', {'num_epochs': 1, 'schedule.warmup_epochs': 1.0}, None,
     r'schedule.warmup_epochs: 1 leaves no steps after warm-up in 1 epoch; use fewer warm-up '
     r'epochs \(e.g. --config.schedule.warmup_epochs=0.5\)'),
    ('mixup alpha 0', {'mix.name': 'mixup', 'mix.alpha': 0.0}, None,
     r'mix.alpha: must be a finite number > 0 \(Beta\(alpha, alpha\); 1 gives U\(0, 1\)\)'),
    ('unknown test-time augmentation', {'eval.tta': 'crop'}, None,
     r"eval.tta: unknown mode 'crop'; choose one of: none, flip, flip_translate"),
    ('unknown loss reduction', {'loss_reduction': 'max'}, None,
     r"loss_reduction: unknown reduction 'max'; choose one of: mean, sum"),
    ('EMA decay of 1', {'ema.decay': 1.0}, None, r'ema.decay: must be in \[0, 1\)'),
    ('parameter group selecting nothing', {'optim.param_groups': {'g': {'path': 'nothing'}}},
     None, r'optim.param_groups.g: selects no parameter of this model'),
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
    # Every numeric field has a range, checked before the data loads (config_checks.FIELDS).
    ('step factor negative', {'schedule.name': 'step', 'schedule.factor': -0.2}, None,
     r'schedule.factor: must be a finite number > 0 .*got -0.2'),
    ('zero widths (ZeroDivisionError before)', {'model.base_width': 0, 'model.stem_width': 0},
     None, r'model.base_width: must be an integer from 1 to 2147483647, got 0'),
    ('negative lr floor (gradient ascent before)', {'schedule.lr_min': -1.0}, None,
     r'schedule.lr_min: must be a finite number >= 0, got -1.0'),
    ('seed negative', {'seed': -1}, None, r'seed: must be an integer from 0 to 4294967295'),
    ('seed of 2**32 (would repeat seed 0)', {'seed': 2**32}, None,
     r'seed: must be an integer from 0 to 4294967295 .*got 4294967296'),
    ('lr floor above lr', {'schedule.lr_min': 0.5}, None,
     r'schedule.lr_min: 0.5 is above optim.lr 0.2; the cosine schedule decays'),
    ('htd bounds reversed', {'schedule.name': 'htd', 'schedule.htd_lower': 4.0}, None,
     r'schedule.htd_lower: 4.0 must be below schedule.htd_upper 3.0'),
    ('milestones not increasing', {'schedule.name': 'step', 'schedule.milestones': (1, 1)}, None,
     r'schedule.milestones: must increase, got \(1, 1\)'),
    ('milestone negative', {'schedule.milestones': (-1, 1)}, None,
     r'schedule.milestones: must be a tuple, each a finite number >= 0'),
    ('warm-up negative', {'schedule.warmup_epochs': -1.0}, None,
     r'schedule.warmup_epochs: must be a finite number >= 0, got -1.0'),
    ('weight decay infinite', {'optim.weight_decay': float('inf')}, None,
     r'optim.weight_decay: must be a finite number >= 0, got inf'),
    ('momentum nan', {'optim.momentum': float('nan')}, None,
     r'optim.momentum: must be in \[0, 1\) \(0 turns momentum off\), got nan'),
    ('learning rate nan', {'optim.lr': float('nan')}, None,
     r'optim.lr: must be a finite number >= 0, got nan'),
    ('batch beyond int32', {'batch_size': 2**40}, None,
     r'batch_size: must be a positive integer \(at most 2147483647\), got 1099511627776'),
    ('eval batch 0', {'eval_batch_size': 0}, None, r'eval_batch_size: must be a positive integer'),
    ('epochs beyond int32', {'num_epochs': 2**31}, None,
     r'num_epochs: 2147483648 epochs of 8 steps are 17179869184 steps, more than the int32 step '
     r'counter holds \(2147483647\); use fewer epochs'),
    ('log every 0 steps', {'log_every_steps': 0}, None, r'log_every_steps: must be a positive'),
    ('checkpoint every 0 steps', {'checkpoint_every_steps': 0}, None,
     r'checkpoint_every_steps: must be a positive integer, got 0'),
    ('keep 0 checkpoints', {'keep_checkpoints': 0}, None, r'keep_checkpoints: must be a positive'),
    ('0 steps per dispatch', {'steps_per_dispatch': 0}, None,
     r'steps_per_dispatch: must be a positive integer, got 0'),
    ('eval every -1 epochs', {'eval_every_epochs': -1}, None,
     r'eval_every_epochs: must be a non-negative integer \(0: only at the end\), got -1'),
    ('progress every 0 s', {'progress_every_secs': 0.0}, None,
     r'progress_every_secs: must be a finite number > 0, got 0.0'),
    ('label smoothing negative', {'label_smoothing': -0.1}, None,
     r'label_smoothing: must be in \[0, 1\), got -0.1'),
    ('mixup alpha nan', {'mix.name': 'mixup', 'mix.alpha': float('nan')}, None,
     r'mix.alpha: must be a finite number > 0'),
    ('mix probability above 1', {'mix.prob': 1.5}, None, r'mix.prob: must be in \[0, 1\], got 1.5'),
    ('unknown cutmix box', {'mix.name': 'cutmix', 'mix.cutmix_box': 'middle'}, None,
     r"mix.cutmix_box: unknown box 'middle'; choose one of: center, corner"),
    ('cutout probability 2', {'augment.cutout_prob': 2.0}, None,
     r'augment.cutout_prob: must be in \[0, 1\], got 2.0'),
    ('negative crop padding', {'augment.crop_padding': -1}, None,
     r'augment.crop_padding: must be a non-negative integer \(0 disables pad-and-crop\)'),
    ('mean nan', {'augment.mean': (float('nan'),)}, None,
     r'augment.mean: must be a tuple, each in \[0, 255\] .*got \(nan,\)'),
    ('std zero', {'augment.std': (0.0,)}, None,
     r'augment.std: must be a tuple, each in \(0, 255\] .*got \(0.0,\)'),
    ('zero classes', {'dataset.num_classes': 0}, None,
     r'dataset.num_classes: must be a positive integer, got 0'),
    # The model's fields, for every family alike (models.registry).
    ('a stage of no units', {'model.stage_sizes': (1, 0, 1, 1)}, None,
     r'model.stage_sizes: must be an integer from 1 to 2147483647 in every entry, got '
     r'\(1, 0, 1, 1\)'),
    ('unknown drop-path mode', {'model.drop_path_mode': 'row'}, None,
     r"model.drop_path_mode: unknown value 'row'; choose one of: batch, sample"),
    ('survival probability above 1', {'model.survival_prob': 1.5}, None,
     r'model.survival_prob: must be in \(0, 1\]; 1.0 disables stochastic depth, got 1.5'),
    ('stem wider than the first stage', {'model.stem_width': 8}, None,
     r'model.stem_width: 8 exceeds the first stage width 4; the zero-pad shortcut can only widen'),
    ('unknown activation', {'model.activation': 'gelu'}, None,
     r"model.activation: unknown value 'gelu'; choose one of: relu, mish, swish"),
    ('unknown compute dtype', {'model.dtype': 'float64'}, None,
     r"model.dtype: unknown dtype 'float64'; choose one of: float32, bfloat16, float16"),
    # Paths and data.
    ('init_from under a missing home path', {'init_from': '~/no/such/run'}, 'fresh',
     r"init_from: '/.*/no/such/run' does not exist; give the workdir of a finished run"),
    ('negative percent that selects nothing', {'dataset.eval_split': 'test[-0.1%:]'}, None,
     r"dataset.eval_split: split 'test\[-0.1%:\]' selects no examples"),
    ('corrupt gzip body in an idx file', {}, 'idx-gzip',
     r"dataset.path: cannot read idx file '.*train-images-idx3-ubyte.gz' \(.*\); download it "
     r'again'),
    ('idx file of another kind', {}, 'idx-magic',
     r"dataset.path: '.*t10k-images-idx3-ubyte' is not an idx file of 3-D unsigned bytes"),
    ('idx images and labels disagree', {}, 'idx-count',
     r"dataset.path: '.*train-images-idx3-ubyte' holds 30 images but .* holds 40 labels"),
    ('eval classes the train split lacks', {}, 'classes',
     r'dataset.path: classes Cat are only in the eval split \(test/\), classes cat only in the '
     r'train split \(train/\); a split may lack a class but not add one'),
    ('zip with a corrupt central directory', {}, 'zip-directory',
     r"dataset.path: cannot read the zip file '.*' \(.*\); download or build it again"),
    ('image outside the class folders', {}, 'outside',
     r"dataset.path: image 'train/stray.png' in .* is not at the split/class/image depth"),
    ('data path is a plain file', {}, 'plain-file',
     r"dataset.path: '.*notes.txt' is neither a directory nor a .zip file"),
    ('folder source without a path', {'dataset.source': 'folder'}, None,
     r"dataset.path: required with dataset.source='folder'; set it to an image-folder directory"),
    ('tfds offline and not prepared', {}, 'tfds-offline',
     r"dataset.data_dir: TFDS dataset 'cifar10' is not prepared in data_dir .* and its download "
     r'host www.cs.toronto.edu \(.*\) is unreachable; for data on disk use '
     r'--config.dataset.source=folder'),
    ('empty workdir in process', {}, 'empty-workdir',
     r"--workdir: empty \(''\); give a directory"),
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
  elif kind.startswith('idx'):
    shutil.rmtree(root)
    root.mkdir()
    _write_idx(root, kind)
    return {**folder, 'dataset.source': 'idx'}
  elif kind == 'classes':  # cat,dog trained; Cat,dog evaluated
    shutil.rmtree(root)
    for split, label in (('train', 'cat'), ('train', 'dog'), ('test', 'Cat'), ('test', 'dog')):
      _image(root / split / label / 'a.png', 8)
  elif kind == 'zip-directory':
    archive = root.parent / f'{root.name}.zip'
    shutil.make_archive(str(archive.with_suffix('')), 'zip', root)
    data = bytearray(archive.read_bytes())
    entry = data.rindex(b'PK\x01\x02')  # the last central-directory entry
    data[entry:entry + 4] = b'XXXX'
    archive.write_bytes(bytes(data))
    return {**folder, 'dataset.path': str(archive)}
  elif kind == 'outside':
    _image(root / 'train' / 'stray.png', 8)
  elif kind == 'plain-file':
    (root / 'notes.txt').write_text('not images')
    return {**folder, 'dataset.path': str(root / 'notes.txt')}
  elif kind == 'tfds-offline':
    return {'dataset.source': 'tfds', 'dataset.name': 'cifar10', 'dataset.data_dir': str(root),
            'dataset.train_split': 'train', 'dataset.eval_split': 'test'}
  return folder


def _write_idx(root: pathlib.Path, kind: str) -> None:
  """Train 40 / test 20 8x8 idx files, broken the way `kind` says."""
  for prefix, n in (('train', 40), ('t10k', 20)):
    magic = 0x0802 if kind == 'idx-magic' and prefix == 't10k' else 0x0803
    count = 30 if kind == 'idx-count' and prefix == 'train' else n
    header = magic.to_bytes(4, 'big') + b''.join(x.to_bytes(4, 'big') for x in (count, 8, 8))
    images = header + bytes(i % 251 for i in range(count * 64))
    name = f'{prefix}-images-idx3-ubyte'
    if kind == 'idx' and prefix == 'train':
      images = images[:-100]  # cut short, as a failed download leaves it
    if kind == 'idx-gzip' and prefix == 'train':
      packed = bytearray(gzip.compress(images))
      packed[20:40] = bytes(b ^ 0xFF for b in packed[20:40])  # inside the deflate stream
      (root / f'{name}.gz').write_bytes(bytes(packed))
    else:
      (root / name).write_bytes(images)
    labels = (0x0801).to_bytes(4, 'big') + n.to_bytes(4, 'big') + bytes(range(10)) * (n // 10)
    with gzip.open(root / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
      f.write(labels)


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
  (root / 'no_get_config.py').write_text('x = 1\n')
  (root / 'broken.py').write_text('def get_config(:\n')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO)}

  def run(case):
    name, args, _ = case
    workdir = _copy(finished_run, root / re.sub(r'\W+', '_', name))
    own_config = any(a.startswith('--config=') for a in args)  # absl keeps the first --config
    argv = ([] if own_config else [f'--config={config}']) + [f'--workdir={workdir}']
    argv += [a.format(workdir=workdir, file=regular_file, config=config,
                      no_get_config=root / 'no_get_config.py', broken=root / 'broken.py')
             for a in args]
    done = run_main(*argv, env={**env, **CLI_ENV.get(name, {})})
    return name, (done.returncode, done.stderr, workdir)

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    return dict(pool.map(run, CLI_CASES))


@pytest.mark.parametrize('name,args,expected', CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_case(cli_results, finished_run, name, args, expected):
  del args
  returncode, stderr, workdir = cli_results[name]
  assert returncode == 2
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
def test_run_case(finished_run, tmp_path, capsys, monkeypatch, name, overrides, data, expected):
  del name
  workdir = _copy(finished_run, tmp_path)
  if data == 'fresh':  # a new run: init_from is read only when the workdir has no checkpoint
    workdir = tmp_path / 'fresh'
  elif data == 'empty-workdir':
    workdir = ''
  elif data == 'tfds-offline':  # no network, whatever this machine has
    monkeypatch.setattr(socket, 'create_connection', _no_network)
    for variable in ('https_proxy', 'http_proxy', 'all_proxy', 'HTTPS_PROXY', 'HTTP_PROXY',
                     'ALL_PROXY'):
      monkeypatch.delenv(variable, raising=False)
    overrides = {**_make_data(tmp_path / data, data), **overrides}
  elif data == 'no-config-json':  # a workdir from before config.json: the shapes decide
    (workdir / 'config.json').unlink()
  elif data == 'ckpt-file':
    workdir = tmp_path / 'fresh'
    workdir.mkdir()
    (workdir / 'checkpoints').write_text('')
  elif data is not None:
    overrides = {**_make_data(tmp_path / data, data), **overrides}
  status = main.run(_config(overrides), str(workdir))
  assert status == 2
  _assert_one_error_line(capsys.readouterr().err, expected)
  if workdir and workdir.name == 'run':
    assert _checkpoint_bytes(workdir) == finished_run[1]


def _no_network(address, timeout=None):
  raise socket.gaierror(-2, 'Name or service not known')


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

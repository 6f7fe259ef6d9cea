"""A workdir belongs to one run: the lock, the fields a resume may not change, safe writes.

In-process runs on the tiny config; the lock between two real processes and the `kill -9`
case run `main.py` in subprocesses (which die with their test).
"""
# pylint: disable=redefined-outer-name  # pytest fixtures

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

import main
from benchmarks import processes
from jaxcls import train
from jaxcls import workdir as workdir_lib
from jaxcls.errors import UserError
from tests.conftest import run_main, tiny_config, xla_cache  # pylint: disable=unused-import

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = {'num_epochs': 2, 'checkpoint_every_steps': 4}


@pytest.fixture(scope='module')
def finished(xla_cache, tmp_path_factory) -> pathlib.Path:
  """The workdir of one finished tiny run (copied per test by `run_dir`)."""
  del xla_cache
  path = tmp_path_factory.mktemp('finished')
  train.train_and_evaluate(tiny_config(**CONFIG), str(path))
  return path


@pytest.fixture
def run_dir(finished, tmp_path) -> pathlib.Path:
  target = tmp_path / 'run'
  shutil.copytree(finished, target, symlinks=True)
  return target


def _digest(path: pathlib.Path) -> dict[str, str]:
  """Every file under `path` (but the lock) and its content hash."""
  return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(path.rglob('*')) if p.is_file() and p.name != workdir_lib.LOCK_NAME}


def _config(**change):
  return tiny_config(**{**CONFIG, **change})


def _error(capsys, config, path) -> str:
  assert main.run(config, str(path)) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and err.startswith('error: '), err
  return err


# --- Run-defining fields ---------------------------------------------------------------------

@pytest.mark.parametrize('change,listed', [
    ({'batch_size': 16}, 'batch_size: 32 -> 16'),
    ({'model.activation': 'mish'}, "model.activation: null -> 'mish'"),
    ({'num_epochs': 3}, 'num_epochs: 2 -> 3'),
    ({'num_epochs': 1}, 'num_epochs: 2 -> 1'),
    ({'optim.momentum': 0.0}, 'optim.momentum: 0.9 -> 0.0'),
    ({'seed': 1, 'model.dtype': 'bfloat16'}, "model.dtype: 'float32' -> 'bfloat16'; seed: 0 -> 1"),
    ({'dataset.train_split': 'train[:128]'}, "dataset.train_split: 'train[:256]' -> 'train[:128]'"),
    ({'augment.cutout_size': 8}, 'augment.cutout_size: 0 -> 8'),
])
def test_a_changed_run_defining_field_is_refused_and_nothing_changes(run_dir, capsys, change,
                                                                     listed):
  before = _digest(run_dir)
  err = _error(capsys, _config(**change), run_dir)
  assert f'holds a run with other settings ({listed})' in err
  assert f'--config.init_from={run_dir}' in err and 'new --workdir' in err
  assert _digest(run_dir) == before


def test_cadence_and_location_fields_may_change(run_dir, capsys):
  (run_dir / 'results.json').unlink()  # finished but unreported: the rerun evaluates again
  config = _config(log_every_steps=8, checkpoint_every_steps=16,
                       keep_checkpoints=1, eval_batch_size=32, steps_per_dispatch=2,
                       progress_every_secs=5.0)
  assert main.run(config, str(run_dir)) == 0
  assert json.loads((run_dir / 'results.json').read_text())['step'] == 16
  assert 'error' not in capsys.readouterr().err


def test_changed_fields_ignore_fields_an_older_config_lacks():
  saved = {'optim': {'lr': 0.1}, 'seed': 0}
  new = {'optim': {'lr': 0.1, 'param_groups': []}, 'seed': 0, 'ema': {'decay': 0.0}}
  assert not workdir_lib.changed_fields(saved, new)
  assert workdir_lib.changed_fields(saved, {'optim': {'lr': 0.2}, 'seed': 0}) == [
      ('optim.lr', 0.1, 0.2)]


def test_a_checkpoint_records_what_its_step_means(run_dir, capsys):
  meta = json.loads(next((run_dir / 'checkpoints' / '16').glob('meta/*')).read_text())
  assert (meta['batch_size'], meta['train_size'], meta['steps_per_epoch']) == (32, 256, 8)
  # Without config.json (a workdir of an older version), the checkpoint still guards the resume.
  (run_dir / 'config.json').unlink()
  (run_dir / 'results.json').unlink()
  err = _error(capsys, _config(batch_size=16, num_epochs=1), run_dir)
  assert 'its checkpoints count steps of another run (batch_size: 32 -> 16)' in err


# --- Safe writes -----------------------------------------------------------------------------

def test_a_planted_link_is_not_followed(run_dir, tmp_path):
  outside = tmp_path / 'outside.txt'
  outside.write_text('precious')
  (run_dir / 'results.json').unlink()
  for name in ('.results.json.tmp', '.config.json.tmp'):
    os.symlink(outside, run_dir / name)
  train.train_and_evaluate(tiny_config(**CONFIG), str(run_dir))
  assert outside.read_text() == 'precious'
  assert json.loads((run_dir / 'results.json').read_text())['step'] == 16


def test_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
  def no_space(*args, **kwargs):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(workdir_lib.os, 'fdopen', no_space)
  with pytest.raises(UserError, match=r'cannot write .*config.json \(No space left on device\); '
                     'free disk space'):
    workdir_lib.write_atomic(workdir_lib.epath.Path(tmp_path / 'config.json'), '{}')
  assert not list(tmp_path.iterdir())


def test_config_json_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
  mkstemp = workdir_lib.tempfile.mkstemp

  def full(*args, prefix='', **kwargs):
    if prefix.startswith('.config.json'):
      raise OSError(28, 'No space left on device')
    return mkstemp(*args, prefix=prefix, **kwargs)

  monkeypatch.setattr(workdir_lib.tempfile, 'mkstemp', full)
  err = _error(capsys, tiny_config(**CONFIG), tmp_path / 'w')
  assert f'cannot write {tmp_path / "w" / "config.json"} (No space left on device)' in err
  assert not [p for p in (tmp_path / 'w').iterdir() if p.name.endswith('.tmp')]


# --- The lock --------------------------------------------------------------------------------

def test_a_held_workdir_is_refused_naming_the_holder(tmp_path, capsys):
  with workdir_lib.WorkdirLock(workdir_lib.epath.Path(tmp_path)):
    err = _error(capsys, tiny_config(**CONFIG), tmp_path)
  assert f'is in use by process {os.getpid()} on ' in err
  assert not (tmp_path / 'checkpoints').exists()
  # Released: the same process can lock it again.
  with workdir_lib.WorkdirLock(workdir_lib.epath.Path(tmp_path)):
    pass


def _main(workdir, *extra, config='configs/quickstart.py') -> list[str]:
  return [sys.executable, str(REPO / 'main.py'), f'--config={config}', f'--workdir={workdir}',
          '--config.num_epochs=2', '--config.dataset.train_split=train[:512]',
          '--config.checkpoint_every_steps=4', *extra]


def _env(xla_cache) -> dict:
  return {**os.environ, 'JAX_COMPILATION_CACHE_DIR': str(xla_cache), 'PYTHONPATH': str(REPO),
          'JAX_PLATFORMS': 'cpu'}


def _wait_for(path: pathlib.Path, process: subprocess.Popen, seconds: float = 120) -> None:
  deadline = time.time() + seconds
  while not path.exists():
    assert process.poll() is None, process.communicate()
    assert time.time() < deadline, f'{path} never appeared'
    time.sleep(0.05)


def test_a_second_process_on_the_same_workdir_is_refused_at_once(tmp_path, xla_cache):
  env = _env(xla_cache)
  with processes.spawned(_main(tmp_path / 'w'), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL) as first:
    _wait_for(tmp_path / 'w' / workdir_lib.LOCK_NAME, first)
    start = time.time()
    second = run_main(*_main(tmp_path / 'w', '--config.seed=1')[2:], env=env, timeout=120)
    assert second.returncode == 2, second.stderr
    assert f'is in use by process {first.pid} on ' in second.stderr
    assert time.time() - start < 60  # before any data or compile
    assert first.wait(timeout=300) == 0
  results = json.loads((tmp_path / 'w' / 'results.json').read_text())
  assert results['step'] == 16
  assert json.loads((tmp_path / 'w' / 'config.json').read_text())['seed'] == 0

"""Faults: signals, kill -9, corrupt checkpoints, non-finite steps, failed writes, determinism.

Every run here is the tiny config of `CONFIG` (16 steps, a checkpoint every 4), so they share one
compilation through the session's persistent XLA cache (conftest), in process and in the `main.py`
subprocesses alike;
a run after the first costs a few seconds. Bitwise comparisons are against `reference`, one
uninterrupted run (CPU).
"""

import concurrent.futures
import errno
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from benchmarks import kill_resume, processes
from jaxcls import checkpoint, logs, train
from jaxcls import workdir as workdir_lib
from jaxcls.data import augment as augment_lib
from jaxcls.errors import UserError
from tests.conftest import run_python, spawned, tiny_config
from tests.conftest import xla_cache  # pylint: disable=unused-import

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = {'num_epochs': 2, 'checkpoint_every_steps': 4, 'log_every_steps': 2,
          'keep_checkpoints': 5}
STEPS = 16
CONFIG_FILE = f'''
from tests.conftest import run_python, spawned, tiny_config
from tests.conftest import xla_cache  # pylint: disable=unused-import

def get_config():
  return tiny_config(**{CONFIG!r})
'''


@pytest.fixture(scope='module')
def reference(xla_cache, tmp_path_factory):
  """Workdir and final variables (as `checkpoint.load_variables` orders them) of one run."""
  del xla_cache
  workdir = tmp_path_factory.mktemp('reference')
  train.train_and_evaluate(tiny_config(**CONFIG), str(workdir))
  return workdir, _variables(workdir)


def _variables(workdir) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(checkpoint.load_variables(str(workdir)))]


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def _steps(workdir) -> list[int]:
  return sorted(int(p.name) for p in (pathlib.Path(workdir) / 'checkpoints').iterdir()
                if p.name.isdigit())


# --- Determinism -----------------------------------------------------------------------------

def test_same_config_and_seed_give_the_same_parameters(reference, tmp_path):
  train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  _assert_same(_variables(tmp_path), reference[1])


# --- Signals ---------------------------------------------------------------------------------

def _signal_after_log(monkeypatch, step: int, signum: int, times: int = 1) -> None:
  """Sends `signum` to this process right after the train scalars of `step` are written."""
  create_writer = logs.create_writer

  def create(*args, **kwargs):
    writer = create_writer(*args, **kwargs)
    write_scalars = writer.write_scalars

    def write(s, scalars):
      write_scalars(s, scalars)
      if s == step and 'train_loss' in scalars:
        for _ in range(times):
          # One at a time: a second kill sent before the first reached its handler (the kernel
          # may deliver it to another thread) would merge with it into one signal.
          handler = signal.getsignal(signum)
          os.kill(os.getpid(), signum)
          deadline = time.monotonic() + 10
          while signal.getsignal(signum) is handler and time.monotonic() < deadline:
            time.sleep(0.001)  # the handler runs here; it changes the disposition

    writer.write_scalars = write
    return writer

  monkeypatch.setattr(logs, 'create_writer', create)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_the_current_step_and_resume_is_exact(reference, tmp_path, monkeypatch,
                                                           caplog, signum):
  before = signal.getsignal(signum)
  with monkeypatch.context() as patch:
    _signal_after_log(patch, 6, signum)  # between the checkpoints of steps 4 and 8
    stopped = train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  assert int(stopped.step) == 6
  assert _steps(tmp_path) == [4, 6]
  assert not (tmp_path / 'results.json').exists()
  assert any(f'Stopped by {signal.Signals(signum).name} at step 6' in r.getMessage()
             for r in caplog.records)
  assert signal.getsignal(signum) == before  # the loop's handler is gone
  train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  assert json.loads((tmp_path / 'results.json').read_text())['step'] == STEPS
  _assert_same(_variables(tmp_path), reference[1])


def test_second_sigint_aborts_at_once(reference, tmp_path, monkeypatch):
  del reference  # compiled
  _signal_after_log(monkeypatch, 10, signal.SIGINT, times=2)
  # Python's own handler, which a shell's background job (`pytest &`) starts without: there
  # SIGINT is ignored, and so, rightly, is the second one.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with pytest.raises(KeyboardInterrupt):
      train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
  finally:
    signal.signal(signal.SIGINT, previous)
  # No checkpoint for the aborted step; step 8's write may have been cut short, not step 4's.
  assert 4 in _steps(tmp_path) and set(_steps(tmp_path)) <= {4, 8}


def _cli(workdir) -> list[str]:
  config = pathlib.Path(workdir).parent / f'{pathlib.Path(workdir).name}-config.py'
  config.write_text(CONFIG_FILE)
  return [sys.executable, str(REPO / 'main.py'), f'--config={config}', f'--workdir={workdir}']


def _cli_env(xla_cache) -> dict:
  return {**kill_resume.environment(str(xla_cache.parent)),
          'JAX_COMPILATION_CACHE_DIR': str(xla_cache), 'PYTHONPATH': str(REPO)}


@pytest.mark.slow  # two main.py processes: ~18 s; test_signal_* cover the same loop in process
def test_sigterm_to_main_exits_0_and_the_same_command_resumes(reference, xla_cache, tmp_path):
  workdir = tmp_path / 'run'
  log = tmp_path / 'run.log'
  with open(log, 'w') as out, spawned(_cli(workdir), stdout=out, stderr=subprocess.STDOUT,
                                      env=_cli_env(xla_cache), cwd=REPO) as process:
    kill_resume.wait_for('[2] learning_rate=', process, log, 300)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0, log.read_text()
  output = log.read_text()
  assert 'Traceback' not in output
  stopped = [line for line in output.splitlines() if 'Stopped by SIGTERM at step' in line]
  assert len(stopped) == 1, output
  step = int(stopped[0].split('at step ')[1].split()[0])
  assert 2 <= step < STEPS and step in _steps(workdir)
  assert not (workdir / 'results.json').exists()
  rerun = run_python(*_cli(workdir)[1:], env=_cli_env(xla_cache))
  assert rerun.returncode == 0, rerun.stderr
  assert f'Resumed from {workdir}/checkpoints at step {step}' in rerun.stderr
  _assert_same(_variables(workdir), reference[1])


@pytest.mark.slow  # four main.py processes: ~20 s (benchmarks/kill_resume.py runs twenty)
def test_kill_9_at_random_moments_then_rerun_is_bitwise_exact(reference, xla_cache, tmp_path):
  """Two trials of benchmarks/kill_resume.py (the benchmark runs twenty), side by side."""
  env = _cli_env(xla_cache)
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    outcomes = list(pool.map(lambda i: kill_resume.trial(i, str(tmp_path), env, reference[1],
                                                         seed=1, steps=STEPS, command=_cli),
                             range(2)))
  assert [o is not None and o['identical'] for o in outcomes] == [True, True], outcomes


def test_results_and_config_are_written_atomically(tmp_path, monkeypatch):
  path = tmp_path / 'results.json'
  path.write_text('old')

  def fail(src, dst):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(workdir_lib.os, 'replace', fail)
  with pytest.raises(UserError, match=r'cannot write .*results.json \(No space left on device\)'):
    workdir_lib.write_atomic(checkpoint.epath.Path(path), 'new')
  assert path.read_text() == 'old'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['results.json']  # no temporary left


# --- Corrupt checkpoints ---------------------------------------------------------------------

def _truncate_arrays(step_dir: pathlib.Path) -> None:
  for f in (step_dir / 'state').rglob('*'):
    if f.is_file() and f.parent.name == 'd':
      f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])


def _delete_arrays(step_dir: pathlib.Path) -> None:
  for d in (step_dir / 'state').rglob('d'):
    shutil.rmtree(d)


def _garbage_metadata(step_dir: pathlib.Path) -> None:
  (step_dir / 'state' / '_METADATA').write_text('{"tree_metadata": garbage')
  (step_dir / 'meta' / 'metadata').write_bytes(b'\x00\xff not json')


@pytest.mark.parametrize('corrupt', [_truncate_arrays, _delete_arrays, _garbage_metadata])
def test_corrupt_latest_checkpoint_falls_back_to_the_one_before(reference, tmp_path, caplog,
                                                               corrupt):
  workdir = tmp_path / 'run'
  shutil.copytree(reference[0], workdir)
  (workdir / 'results.json').unlink()  # as if killed before its results
  corrupt(workdir / 'checkpoints' / str(STEPS))
  corrupt_files = {p.relative_to(workdir / 'checkpoints' / str(STEPS)): p.read_bytes()
                   for p in (workdir / 'checkpoints' / str(STEPS)).rglob('*') if p.is_file()}
  train.train_and_evaluate(tiny_config(**CONFIG), str(workdir))
  assert any(f'/{STEPS} is unreadable' in r.getMessage() or f'/{STEPS} failed to restore'
             in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  # The corrupt step was moved aside whole, not deleted; the run resumed from the step before
  # (the only one moved is 16) and wrote step 16 again.
  moved = workdir / checkpoint.CORRUPT_DIR / str(STEPS)
  assert {p.relative_to(moved): p.read_bytes() for p in moved.rglob('*')
          if p.is_file()} == corrupt_files
  assert _steps(workdir) == [4, 8, 12, 16]
  _assert_same(_variables(workdir), reference[1])


def test_no_restorable_checkpoint_is_an_error_that_moves_nothing(reference, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(reference[0], workdir)
  (workdir / 'results.json').unlink()
  for step in _steps(workdir):
    _garbage_metadata(workdir / 'checkpoints' / str(step))
  with pytest.raises(UserError, match='no checkpoint can be restored .*use a new --workdir'):
    train.train_and_evaluate(tiny_config(**CONFIG), str(workdir))
  assert _steps(workdir) == [4, 8, 12, 16]
  assert not (workdir / checkpoint.CORRUPT_DIR).exists()


# --- Failed checkpoint writes ----------------------------------------------------------------

def test_failure_while_writing_a_checkpoint_names_the_directory(reference, tmp_path,
                                                                monkeypatch):
  del reference  # compiled
  save = ocp.CheckpointManager.save

  def fail_at_8(self, step, *args, **kwargs):
    if step == 8:
      raise OSError(28, 'No space left on device')
    return save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'save', fail_at_8)
  with pytest.raises(UserError, match=rf'checkpoints: cannot save step 8 in {tmp_path}/'
                                      r'checkpoints \(OSError: .*No space left.*\); free disk'):
    train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  monkeypatch.undo()
  assert _steps(tmp_path) == [4]
  assert checkpoint.Checkpoints(str(tmp_path)).restore_meta(4)['step'] == 4


def test_a_failed_asynchronous_write_names_its_own_step(reference, tmp_path, monkeypatch):
  """Step 8's write fails in the background; the error (raised when step 12 is saved) names
  step 8, and step 4 stays complete."""
  del reference  # compiled
  save, wait = ocp.CheckpointManager.save, ocp.CheckpointManager.wait_until_finished
  started = []

  def record(self, step, *args, **kwargs):
    started.append(step)
    return save(self, step, *args, **kwargs)

  def fail_after_8(self):
    wait(self)
    if started and started[-1] == 8:
      raise OSError(28, 'No space left on device')

  monkeypatch.setattr(ocp.CheckpointManager, 'save', record)
  monkeypatch.setattr(ocp.CheckpointManager, 'wait_until_finished', fail_after_8)
  with pytest.raises(UserError, match=r'checkpoints: cannot save step 8 in .*No space left'):
    train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  monkeypatch.undo()
  assert 4 in _steps(tmp_path) and 12 not in _steps(tmp_path)


def _in_a_mount_namespace(setup: str, command: list[str]) -> list[str]:
  """`command` in a private mount namespace prepared by the shell line `setup` (skips the test
  where this machine allows no mount namespace)."""
  probe = subprocess.run(['unshare', '-m', '--map-root-user', 'true'], capture_output=True,
                         check=False) if shutil.which('unshare') else None
  if probe is None or probe.returncode:
    pytest.skip('no private mount namespace here (unshare -m)')
  return ['unshare', '-m', '--map-root-user', 'sh', '-c', f'{setup} && exec "$@"', 'sh',
          *command]


def test_read_only_checkpoints_end_in_one_line_and_the_process_exits(reference, xla_cache,
                                                                    tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(reference[0], workdir)
  (workdir / 'results.json').unlink()
  shutil.rmtree(workdir / 'checkpoints' / str(STEPS))  # the rerun must write step 16
  ckpts = workdir / 'checkpoints'
  command = _in_a_mount_namespace(
      f'mount --bind {ckpts} {ckpts} && mount -o remount,ro,bind {ckpts}', _cli(workdir))
  done = processes.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=_cli_env(xla_cache), cwd=REPO, timeout=300)
  assert done.returncode == 2, done.stderr
  assert 'Traceback' not in done.stderr
  errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
  assert errors == [errors[0]] and f'cannot save step {STEPS} in {ckpts}' in errors[0]
  assert _steps(workdir) == [4, 8, 12]


def test_an_unreadable_checkpoint_is_recovered_quietly(reference, xla_cache, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(reference[0], workdir)
  (workdir / 'results.json').unlink()
  (workdir / 'checkpoints' / str(STEPS) / 'state' / 'manifest.ocdbt').unlink()
  done = processes.run(_cli(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=_cli_env(xla_cache), cwd=REPO, timeout=300)
  assert done.returncode == 0, done.stderr
  assert 'Traceback' not in done.stderr and 'Event loop is closed' not in done.stderr
  assert f'Resumed from {workdir}/checkpoints at step 12' in done.stderr
  _assert_same(_variables(workdir), reference[1])


def test_second_sigint_to_main_ends_it_at_once_and_the_rerun_resumes(reference, xla_cache,
                                                                     tmp_path):
  workdir = tmp_path / 'run'
  log = tmp_path / 'run.log'
  with open(log, 'w') as out, processes.spawned(_cli(workdir), stdout=out,
                                                 stderr=subprocess.STDOUT,
                                                 env=_cli_env(xla_cache), cwd=REPO) as process:
    kill_resume.wait_for('[2] learning_rate=', process, log, 300)
    process.send_signal(signal.SIGINT)
    # The second as soon as the first was handled: a fixed delay lets a fast machine finish
    # the graceful stop (a step and a checkpoint, ~0.2 s) before it arrives.
    kill_resume.wait_for('SIGINT: stopping at the next step boundary', process, log, 60)
    assert process.poll() is None, log.read_text()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == -signal.SIGINT, log.read_text()
  assert 'Traceback' not in log.read_text()
  rerun = processes.run(_cli(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=_cli_env(xla_cache), cwd=REPO, timeout=300)
  assert rerun.returncode == 0, rerun.stderr
  _assert_same(_variables(workdir), reference[1])


def test_a_signal_before_the_first_step_says_no_checkpoint_was_written(reference, tmp_path,
                                                                       monkeypatch, caplog):
  del reference  # compiled
  start_loop = train.start_loop

  def start_then_signal(run):
    loop = start_loop(run)
    os.kill(os.getpid(), signal.SIGTERM)
    return loop

  monkeypatch.setattr(train, 'start_loop', start_then_signal)
  state = train.train_and_evaluate(tiny_config(**CONFIG), str(tmp_path))
  assert int(state.step) == 0 and not _steps(tmp_path)
  stopped = [r.getMessage() for r in caplog.records if 'Stopped by SIGTERM' in r.getMessage()]
  assert stopped == ['Stopped by SIGTERM at step 0 of 16, before the first step, so no '
                     'checkpoint was written; run the same command again to start.']


# --- Non-finite steps ------------------------------------------------------------------------

def _poison(monkeypatch, step: int) -> None:
  """Makes the images, so the loss, of `step` (counted like checkpoints, from 1) NaN: the only
  step whose augment key is that one."""
  _, _, train_key, _ = train.run_keys(tiny_config().seed)
  target = jax.random.key_data(train.step_rngs(train_key, jnp.int32(step - 1))['augment'])
  make_augment = augment_lib.make_augment

  def make(*args, **kwargs):
    augment = make_augment(*args, **kwargs)

    def poisoned(key, images, *args):
      hit = jnp.all(jax.random.key_data(key) == target)
      return augment(key, images, *args) * jnp.where(hit, jnp.nan, 1.0)

    return poisoned

  monkeypatch.setattr(augment_lib, 'make_augment', make)


def test_nan_stop_names_the_step_and_keeps_the_last_good_checkpoint(reference, tmp_path,
                                                                    monkeypatch):
  """Resumed at step 8 with a NaN weight, step 9 is the first non-finite one; the loop learns
  it at the sync of step 10 and stops there, writing nothing after step 8."""
  workdir = tmp_path / 'run'
  shutil.copytree(reference[0], workdir)
  for step in (12, 16):
    shutil.rmtree(workdir / 'checkpoints' / str(step))
  (workdir / 'results.json').unlink()
  before = {p: p.read_bytes() for p in (workdir / 'checkpoints').rglob('*') if p.is_file()}
  restore = checkpoint.Checkpoints.restore

  def restore_with_a_nan(self, *args):
    state, meta = restore(self, *args)
    leaves, tree = jax.tree.flatten(state.params)
    leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
    return state.replace(params=jax.tree.unflatten(tree, leaves)), meta

  monkeypatch.setattr(checkpoint.Checkpoints, 'restore', restore_with_a_nan)
  with pytest.raises(train.NonFiniteLoss,
                     match=r'not finite at step 9, .* last good checkpoint is step 8 in '
                           rf'{workdir}/checkpoints\. .*--config\.nan_policy=skip'):
    train.train_and_evaluate(tiny_config(**CONFIG), str(workdir))
  assert {p: p.read_bytes() for p in (workdir / 'checkpoints').rglob('*')
          if p.is_file()} == before
  assert not (workdir / 'results.json').exists()


def test_nan_skip_drops_exactly_that_update(xla_cache, tmp_path, monkeypatch):
  del xla_cache
  _poison(monkeypatch, 11)
  config = tiny_config(**{**CONFIG, 'nan_policy': 'skip', 'checkpoint_every_steps': 1,
                          'keep_checkpoints': STEPS})
  train.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['step'] == STEPS and results['skipped_steps'] == 1
  assert np.isfinite(results['train_loss'])  # the dropped step is left out of the average
  manager = checkpoint.Checkpoints(str(tmp_path)).manager

  def state(step):
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return restored['state']

  s10, s11, s12 = state(10), state(11), state(12)
  assert int(s11['step']) == 11
  for key in ('params', 'batch_stats', 'opt_state'):
    _assert_same(jax.tree.leaves(s11[key]), jax.tree.leaves(s10[key]))  # update 11 dropped
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(s12[key]))
  assert any((a != b).any() for a, b in zip(jax.tree.leaves(s12['params']),
                                            jax.tree.leaves(s11['params'])))

"""The benchmarks on the tiny config: each runs in seconds and prints one JSON line."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import pytest

from benchmarks import (common, compile_time, loop_overhead, processes, throughput,
                        time_to_accuracy)
from jaxcls import checkpoint, models, train
from jaxcls.errors import UserError
from tests.conftest import tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY_CONFIG_FILE = '''
from tests.conftest import tiny_config


def get_config():
  return tiny_config()
'''


@pytest.fixture
def tiny_file(tmp_path):
  path = tmp_path / 'tiny.py'
  path.write_text(TINY_CONFIG_FILE)
  return str(path)


def test_throughput_cli_prints_one_json_line_and_records_it(tiny_file, tmp_path, capsys):
  result = throughput.main(['--config', tiny_file, '--batch-size', '16', '--dtype', 'bfloat16',
                            '--steps', '4', '--warmup', '1', '--window', '2',
                            '--steps-per-dispatch', '2', '--config.optim.lr=0.05',
                            '--record', 'tiny', '--record-dir', str(tmp_path / 'runs')])
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1 and json.loads(lines[0]) == result
  # Two steps per call, synced every call: 2 windows of 2 steps, each timed per step.
  assert result['timed_steps'] == 4 and result['windows'] == 2
  assert result['images_per_sec'] == pytest.approx(16 / result['step_s'])
  assert result['step_s_min'] <= result['step_s'] <= result['step_s_max']
  assert result['images_per_sec'] > 0 and result['compile_s'] > 0
  assert result['batch_size'] == 16 and result['dtype'] == 'bfloat16'
  assert result['device'] == jax.devices()[0].device_kind
  assert result['mfu'] is None  # no published peak for a CPU
  record = json.loads((tmp_path / 'runs' / 'bench-tiny.json').read_text())
  assert record['kind'] == 'throughput' and record['images_per_sec'] == result['images_per_sec']
  # The command reproduces the figure; the filing flags are not part of it.
  assert record['command'] == (f'python benchmarks/throughput.py --config {tiny_file} '
                               '--batch-size 16 --dtype bfloat16 --steps 4 --warmup 1 '
                               '--window 2 --steps-per-dispatch 2 --config.optim.lr=0.05')


def test_time_to_accuracy_runs_seeds_and_times_the_crossings(tiny_file, tmp_path, capsys,
                                                             monkeypatch, xla_cache):
  """Two seeds of the tiny config (2 epochs, evaluated after each), each a `main.py` process
  sharing the session's compilation cache: a target every evaluation meets is crossed at the
  first one, one above 100% never."""
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', str(xla_cache))
  monkeypatch.setenv('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  monkeypatch.setenv('PYTHONPATH', str(REPO))
  root = tmp_path / 'runs'
  result = time_to_accuracy.main([
      '--config', tiny_file, '--seeds', '2', '--target', '0', '--target', '1.01',
      '--workdir-root', str(root), '--config.seed=3', '--record', 'tta',
      '--record-dir', str(tmp_path / 'records')])
  assert json.loads(capsys.readouterr().out.splitlines()[-1]) == result
  assert result['seeds'] == [3, 4] and result['runs'] == 2
  accuracies = [json.loads((root / f'seed{s}' / 'results.json').read_text())['test_accuracy']
                for s in (3, 4)]
  assert result['test_accuracies'] == accuracies
  assert result['test_accuracy_min'] == min(accuracies)
  assert result['test_accuracy_mean'] == pytest.approx(sum(accuracies) / 2)
  assert result['epochs'] == 2 and result['steps'] == 16 and result['evals_per_run'] == 2
  for wall, train_s in zip(result['wall_s'], result['train_s']):
    assert 0 < train_s < wall  # training alone is part of the process's time
  always, never = result['targets']['0'], result['targets']['1.01']
  assert always['reached'] == 2 and never['reached'] == 0 and never['runs'] == [None, None]
  for run, wall in zip(always['runs'], result['wall_s']):
    assert run['epoch'] == 1 and run['step'] == 8
    assert 0 < run['wall_s'] < wall and 0 < run['train_s']
  record = json.loads((tmp_path / 'records' / 'bench-tta.json').read_text())
  assert record['kind'] == 'time_to_accuracy' and record['targets'] == result['targets']


def test_loop_overhead_runs_the_real_loop_against_the_bare_step(tmp_path):
  config = tiny_config(num_epochs=2)
  result = loop_overhead.measure(config, repeats=1, workdir=str(tmp_path))
  assert result['steps'] == 2 * (256 // 32)
  # 16 steps of a tiny net against 4 logs, 2 evaluations and 2 checkpoints: no figure to hold
  # it to, but a real ratio of two real timings.
  assert 0 < result['ratio'] < 2
  assert result['ratio'] == pytest.approx(result['bare_s'] / result['loop_s'])
  assert result['loop_images_per_sec'] == pytest.approx(16 * 32 / result['loop_s'])
  # Every part was seen: compiles and evaluations were timed (and excluded), checkpoints saved.
  assert result['compile_s'] > result['loop_compile_s'] >= 0
  assert result['eval_s'] > 0 and result['checkpoint_s'] > 0 and result['end_of_run_s'] > 0
  assert result['bursts'] == 2  # the bare step caught up at each of the 2 evaluations
  assert (tmp_path / 'run0' / 'results.json').exists()
  # The instrumentation is gone afterwards.
  assert train.make_train_fn.__qualname__ == 'make_train_fn'
  assert checkpoint.Checkpoints.save.__qualname__ == 'Checkpoints.save'


def test_compile_time_lowers_and_compiles_without_running(tiny_file, capsys):
  result = compile_time.main(['--config', tiny_file, '--batch-size', '64'])
  assert json.loads(capsys.readouterr().out.splitlines()[-1]) == result
  (one,) = result['results']
  assert one['config'] == tiny_file and one['batch_size'] == 64
  assert one['lower_s'] > 0 and one['compile_s'] > 0
  assert one['total_s'] == pytest.approx(one['lower_s'] + one['compile_s'])


def test_compile_time_defaults_to_the_seed_a_models():
  names = compile_time.seed_a_models()
  assert names[:3] == ['mobilenetv2', 'resnet34', 'resnet35b'] and 'resnet50b' in names
  assert compile_time.model_target('resnet50b') == 'configs/resnet50b.py'
  assert compile_time.model_target('no_such_model') == 'seed_a:no_such_model'
  config = common.target_config('seed_a:resnet101b')
  assert config.model.name == 'resnet101b' and config.batch_size == 1024
  assert compile_time.model_target('xception') == 'configs/xception.py'


def test_compile_time_models_take_names_families_and_groups():
  expand = compile_time.expand_models
  assert expand('seed_a') == compile_time.seed_a_models()
  assert expand('all') == models.list_models()
  assert expand('inception_v3, xception') == ['inception_v3', 'xception']
  assert expand('resnest,ibn') == ['resnest50d', 'resnet101b_ibn_a', 'resnet35b_ibn_a',
                                   'resnet50_ibn_a', 'resnet50b_ibn_a']
  assert expand('nat_m1,nat,resnet50b') == ['nat_m1', 'nat_m2', 'resnet50b']  # no duplicates
  with pytest.raises(UserError, match=r"^--models: unknown 'vgg'; give model names, family "
                     r"modules \(airbench, densenet, .*\) or the groups seed_a, all$"):
    expand('resnet50b,vgg')



def test_compile_records_cover_every_planned_family():
  """docs/runs holds a first-compile time for a model of each family of SPEC section 11."""
  timed = {result['model'] for path in (REPO / 'docs' / 'runs').glob('bench-compile-*.json')
           for result in json.loads(path.read_text())['results']}
  families = {models.registry.model_family(name) for name in timed}
  assert {'efficientnet', 'mobilenet_v3', 'nat', 'pyramidnet', 'resnest', 'tresnet', 'ibn',
          'inception_v3', 'inception_v4', 'xception'} <= families

@pytest.mark.parametrize('kind,dtype,peak', [
    ('NVIDIA H100 80GB HBM3', 'bfloat16', 989e12),
    ('NVIDIA H100 PCIe', 'bfloat16', 756e12),
    ('NVIDIA GeForce RTX 3090', 'float32', 35.6e12),
    ('cpu', 'float32', None),
])
def test_peak_flops_table(kind, dtype, peak):
  assert common.peak_flops(kind, dtype) == peak


# --- Child processes (benchmarks/processes.py: what tests and kill_resume start main.py with).

_PARENT_OF_A_SLEEPER = '''
import subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])
print(child.pid, flush=True)
time.sleep(300)
'''


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  # A zombie still answers signal 0 until its parent reaps it.
  with open(f'/proc/{pid}/stat') as f:
    return f.read().split(') ')[1][0] != 'Z'


def test_a_timeout_kills_the_child_and_what_it_started(tmp_path):
  out = tmp_path / 'out'
  with open(out, 'w') as f, pytest.raises(subprocess.TimeoutExpired):
    processes.run([sys.executable, '-c', _PARENT_OF_A_SLEEPER], timeout=3, stdout=f)
  grandchild = int(out.read_text().split()[0])
  deadline = time.time() + 10
  while _alive(grandchild) and time.time() < deadline:
    time.sleep(0.05)
  assert not _alive(grandchild)


def test_leaving_spawned_kills_the_group_and_run_returns_the_output():
  with processes.spawned([sys.executable, '-c', _PARENT_OF_A_SLEEPER],
                         stdout=subprocess.PIPE, text=True) as process:
    grandchild = int(process.stdout.readline())
    assert _alive(process.pid) and _alive(grandchild)
  assert process.returncode == -signal.SIGKILL
  done = processes.run([sys.executable, '-c', 'print("out"); exit(3)'], timeout=60,
                       stdout=subprocess.PIPE, text=True)
  assert (done.returncode, done.stdout) == (3, 'out\n')


_RUNNER_KILLED_BY_TIMEOUT = '''
import sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks import processes
processes.kill_on_termination()
with processes.spawned([sys.executable, '-c', 'import time; time.sleep(300)']) as child:
  print(child.pid, flush=True)
  time.sleep(300)
'''


def test_sigterm_to_the_runner_kills_its_children():
  """A `timeout` around pytest sends SIGTERM: the runner's children die with it."""
  with processes.spawned([sys.executable, '-c', _RUNNER_KILLED_BY_TIMEOUT, str(REPO)],
                         stdout=subprocess.PIPE, text=True) as runner:
    child = int(runner.stdout.readline())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 128 + signal.SIGTERM
  deadline = time.time() + 10
  while _alive(child) and time.time() < deadline:
    time.sleep(0.05)
  assert not _alive(child)

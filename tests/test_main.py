"""main.py: exit statuses, one-line errors, the multi-process flags, fast failure."""

import pathlib
import subprocess
import sys

import pytest

import main
from jaxcls import parallel, train
from jaxcls.errors import UserError
from tests.conftest import tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def _main(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                        timeout=120, check=False)


def test_run_passes_the_multi_process_flags_then_trains(monkeypatch, tmp_path):
  calls = []
  monkeypatch.setattr(parallel, 'initialize_distributed', lambda *a: calls.append(('init', a)))
  monkeypatch.setattr(train, 'train_and_evaluate', lambda c, w: calls.append(('train', w)))
  assert main.run(tiny_config(), str(tmp_path), coordinator_address='host0:1234',
                  num_processes=2, process_id=1) == 0
  assert calls == [('init', ('host0:1234', 2, 1)), ('train', str(tmp_path))]


@pytest.mark.parametrize('error,status,line', [
    (UserError('model.name: unknown model\n  x'), 2, 'error: model.name: unknown model x'),
    (train.NonFiniteLoss('nan_policy: not finite at step 9'), 2,
     'error: nan_policy: not finite at step 9'),
    (KeyboardInterrupt(), 130, 'error: interrupted twice, so no checkpoint was saved; run the '
                                'same command again to resume from the last one'),
])
def test_run_turns_failures_into_one_line_and_a_status(monkeypatch, capsys, tmp_path, error,
                                                       status, line):
  def fail(config, workdir):
    raise error

  monkeypatch.setattr(train, 'train_and_evaluate', fail)
  assert main.run(tiny_config(), str(tmp_path)) == status
  assert capsys.readouterr().err == line + '\n'
  with pytest.raises(type(error)):
    main.run(tiny_config(), str(tmp_path), debug=True)


def test_a_bad_flag_value_is_one_line():
  done = _main('main.py', '--config=configs/quickstart.py', '--workdir=/tmp/x',
               '--num_processes=two')
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1].startswith('error: ')
  assert 'num_processes' in done.stderr and 'Traceback' not in done.stderr


def test_bad_input_fails_before_tensorflow_loads(tmp_path):
  """The checks run before anything heavy loads: an error comes in about a second."""
  done = _main('-X', 'importtime', 'main.py', '--config=configs/quickstart.py',
               f'--workdir={tmp_path}', '--config.model.name=resnet19')
  assert done.returncode == 2
  assert "error: model.name: unknown model 'resnet19'" in done.stderr
  imported = {line.rsplit('|', 1)[-1].strip() for line in done.stderr.splitlines()
              if line.startswith('import time:')}  # -X importtime lists every module imported
  assert 'jaxcls.train' in imported and 'tensorflow' not in imported


def test_debug_shows_the_traceback(tmp_path):
  done = _main('main.py', '--config=configs/quickstart.py', f'--workdir={tmp_path}',
               '--config.model.name=resnet19', '--debug')
  assert done.returncode != 0
  assert 'Traceback' in done.stderr and 'UserError' in done.stderr

"""main.py: exit statuses, one-line errors, the multi-process flags, fast failure."""

import pathlib
import subprocess

import pytest

import main
from jaxcls import parallel, train
from jaxcls.errors import UserError
from tests.conftest import run_python, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def _main(*args: str) -> subprocess.CompletedProcess:
  return run_python(*args, timeout=120)


def test_run_passes_the_multi_process_flags_then_trains(monkeypatch, tmp_path):
  calls = []
  monkeypatch.setattr(parallel, 'initialize_distributed', lambda *a: calls.append(('init', a)))
  monkeypatch.setattr(train, 'train_and_evaluate', lambda c, w, **_: calls.append(('train', w)))
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
  def fail(config, workdir, **_):
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


@pytest.mark.parametrize('flag', ['--help', '-h', '-?'])
def test_help_exits_0_with_the_usage(flag):
  done = _main('main.py', flag)
  assert done.returncode == 0, done.stderr
  assert 'Trains a model' in done.stdout and '--workdir' in done.stdout


def test_without_config_one_line_names_an_example():
  done = _main('main.py')
  assert done.returncode == 2
  assert done.stderr == ('error: --config: required; give a recipe file, e.g. python main.py '
                         '--config configs/quickstart.py (configs/ holds them; --help lists '
                         'every flag)\n')


def test_a_bad_field_is_the_only_line_and_no_workdir_is_made(tmp_path):
  done = _main('main.py', '--config=configs/quickstart.py', f'--workdir={tmp_path / "w"}',
               '--config.schedule.lr_min=-1')
  assert done.returncode == 2
  assert done.stderr == 'error: schedule.lr_min: must be a finite number >= 0, got -1.0\n'
  assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('spec,workdir', [
    ('configs/shake26_96d.py', 'runs/shake26_96d'),
    ('configs/resnet50b.py:sd,htd,cutmix', 'runs/resnet50b_sd_htd_cutmix'),
    ('configs/resnet50b.py: sd , mixup0.2', 'runs/resnet50b_sd_mixup0.2'),
    ('/abs/path/my config.py:a/b', 'runs/my_config_a_b'),
])
def test_default_workdir_names_the_config_and_its_variants(spec, workdir):
  assert main.default_workdir(spec) == workdir


def test_without_workdir_the_default_is_the_first_log_line(monkeypatch, tmp_path):
  """`python main.py --config configs/shake26_96d.py`, as the design card gives it."""
  monkeypatch.chdir(tmp_path)
  done = _main(str(main.__file__), '--config=' + str(REPO / 'configs/shake26_96d.py'),
               '--config.dataset.source=folder',  # stops at the data, after the first lines
               f'--config.dataset.path={tmp_path / "nowhere"}')
  lines = [l for l in done.stderr.splitlines() if l.strip()]
  assert lines[0].endswith('] Workdir: runs/shake26_96d (the default for this config; '
                           '--workdir=DIR chooses another)'), lines
  assert lines[-1].startswith('error: dataset.path: '), lines


def test_the_config_is_one_log_line_unless_print_config(monkeypatch, capsys, tmp_path):
  monkeypatch.setattr(train, 'train_and_evaluate', lambda c, w, **_: None)
  logged = []
  monkeypatch.setattr(main.logging, 'info', lambda fmt, *a: logged.append(fmt % a))
  config = tiny_config()
  assert main.run(config, str(tmp_path), config_spec='configs/x.py:a',
                  overrides={'optim.lr': 0.5}) == 0
  assert logged == [f'Workdir: {tmp_path}',
                    f'Config: configs/x.py:a with --config.optim.lr=0.5; every field goes to '
                    f'{tmp_path}/config.json as the run starts (--print_config logs them).']
  logged.clear()
  assert main.run(config, str(tmp_path), print_config=True) == 0
  assert logged[1].startswith('Config the config:\n') and 'batch_size: 32' in logged[1]


def test_run_expands_the_tilde_in_the_workdir_and_every_path_field(monkeypatch, tmp_path):
  monkeypatch.setenv('HOME', str(tmp_path))
  seen = []
  monkeypatch.setattr(train, 'train_and_evaluate', lambda c, w, **_: seen.append((c, w)))
  config = tiny_config(**{'init_from': '~/other', 'dataset.cache_dir': '~/cache'})
  assert main.run(config, '~/runs/a') == 0
  config, workdir = seen[0]
  assert workdir == f'{tmp_path}/runs/a'
  assert (config.init_from, config.dataset.cache_dir) == (f'{tmp_path}/other', f'{tmp_path}/cache')


def test_a_platform_that_cannot_start_is_one_line(monkeypatch, capsys, tmp_path):
  def fail():
    raise AssertionError()  # what jax.devices() raises for JAX_PLATFORMS=cuda without a GPU

  monkeypatch.setattr(parallel.jax, 'devices', fail)
  monkeypatch.setattr(parallel, 'requested_platforms', lambda: 'cuda')
  monkeypatch.setattr(parallel, '_available_devices', lambda: 'cpu (1 device)')
  assert main.run(tiny_config(), str(tmp_path)) == 2
  assert capsys.readouterr().err == (
      "error: JAX_PLATFORMS=cuda: JAX cannot start 'cuda' on this machine (no cuda device was "
      'found); what starts here: cpu (1 device); unset JAX_PLATFORMS to use it (or install the '
      'jax plugin for your accelerator)\n')

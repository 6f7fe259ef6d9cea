"""The GPU suite (`benchmarks/device_suite.py`) in its CPU dry run, and the PyTorch twins.

The dry run is the suite's every step on tiny sizes against a 60-second deadline, so that the
command a GPU window runs cannot rot between windows. The PyTorch parts run where torch is
installed (CI has none: they skip).
"""

import importlib.util
import json
import sys
import tarfile
import time

import pytest

from benchmarks import device_suite
from jaxcls import report

HAS_TORCH = importlib.util.find_spec('torch') is not None


@pytest.mark.slow  # ~30 s; CI runs it (issue 11: the dry run passes in CI)
def test_dry_run_runs_every_step_and_returns_its_records(tmp_path, monkeypatch, xla_cache):
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', str(xla_cache))  # for main.py's process
  out, work = tmp_path / 'out', tmp_path / 'work'
  start = time.monotonic()
  status = device_suite.main(['--dry-run', '--out', str(out), '--work', str(work)])
  assert time.monotonic() - start < 75  # the 60-second deadline, plus the step that was running

  assert list(status) == list(device_suite.STEPS)
  assert all(s['status'] == 'done' for s in status.values()), status
  assert status['throughput']['measured'][0].startswith('resnet50b b8 bfloat16: ')
  assert len(status['throughput']['measured']) == 2
  if HAS_TORCH:
    assert [m.split(':')[0] for m in status['torch']['measured']] == ['resnet50b', 'wrn28_10']
  else:
    assert status['torch']['skipped'] == 'torch is not installed'
  row = status['seed_rows']['rows']['quickstart']
  assert row.startswith(('finished: ', 'stopped: ')), row

  # What comes back through $OUT: the records, each step's status, the logs, the checkpoint.
  assert json.loads((out / 'suite.json').read_text())['steps'] == status
  with tarfile.open(out / 'records.tar') as tar:
    names = set(tar.getnames())
  expected = {'bench-dryrun-env.json', 'bench-dryrun-throughput-resnet50b-b8-bf16.json',
              'bench-dryrun-throughput-wrn28_10-b8-bf16.json'}
  if HAS_TORCH:
    expected |= {'bench-dryrun-torch-resnet50b-b8.json', 'bench-dryrun-torch-wrn28_10-b8.json'}
  if row.startswith('finished'):
    expected.add('dryrun-quickstart-bf16.json')
  assert names == expected
  records = {r['name']: r for r in report.load_records(str(out / 'runs'))}
  figure = records['bench-dryrun-throughput-resnet50b-b8-bf16']
  assert figure['kind'] == 'throughput' and figure['images_per_sec'] > 0
  assert figure['command'].startswith('python benchmarks/throughput.py --config '
                                      'configs/resnet50b.py --batch-size 8 --dtype bfloat16')
  with tarfile.open(out / 'logs.tar') as tar:
    # airbench94 has landed: the dry run checks that its time-to-accuracy command starts.
    assert sorted(tar.getnames()) == ['quickstart.log', 'tta.log']
  assert status['tta']['exit'] == 0
  with tarfile.open(out / 'ckpt-quickstart.tar') as tar:
    assert 'config.json' in tar.getnames()
  if HAS_TORCH:
    twin = records['bench-dryrun-torch-wrn28_10-b8']
    assert twin['ratio'] == pytest.approx(twin['jaxcls_images_per_sec']
                                          / twin['torch_images_per_sec'])
    assert twin['torch_twin_params'] == twin['params'] == 77_562  # WRN-10-1 on 28x28x1


def test_a_step_past_the_deadline_is_skipped_and_said(tmp_path):
  args = device_suite.argparse.Namespace(deadline=2, out=str(tmp_path), work=str(tmp_path),
                                         data=str(tmp_path), record_dir=str(tmp_path))
  suite = device_suite.Suite(device_suite.DRY_RUN, args)
  status = suite.run(['seed_rows'])  # needs 10 s
  assert status['seed_rows']['status'] == 'skipped: 2 s left, needs 10'
  assert json.loads((tmp_path / 'suite.json').read_text())['steps'] == status


TRAPS_SIGTERM = 'import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))'


@pytest.mark.parametrize('script, seconds, grace, expected', [
    ('pass', 5, None, 0),
    (f'{TRAPS_SIGTERM}; time.sleep(30)', 1.5, 1.0, 'stopped'),  # SIGTERM at 0.5 s: saves, exits
    ('import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)', 1.5,
     1.0, 'killed'),  # ignores SIGTERM: killed at the end
    ('import time; time.sleep(30)', 1, None, 'killed'),
])
def test_child_stops_at_its_deadline(tmp_path, script, seconds, grace, expected):
  args = device_suite.argparse.Namespace(deadline=60, out=None, work=str(tmp_path),
                                         data=str(tmp_path), record_dir=str(tmp_path))
  suite = device_suite.Suite(device_suite.DRY_RUN, args)
  start = time.monotonic()
  assert suite.child([sys.executable, '-c', script], 'child', seconds, grace) == expected
  assert time.monotonic() - start < seconds + 5


@pytest.mark.skipif(not HAS_TORCH, reason='torch is not installed')
@pytest.mark.parametrize('model, shape', [('resnet50b', (32, 32, 3)), ('wrn28_10', (28, 28, 1))])
def test_twins_have_our_params_and_flops(model, shape):
  from benchmarks import torch_twins  # pylint: disable=g-import-not-at-top

  facts = report.model_facts(model, {}, shape, 10)
  twin = torch_twins.twin_facts(torch_twins.build(model, shape), shape)
  assert twin == {'params': facts.params, 'flops': 2 * facts.macs}
  assert twin['params'] == {'resnet50b': 1_309_210, 'wrn28_10': 36_478_906}[model]

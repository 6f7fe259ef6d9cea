"""Runs without TensorFlow or TensorFlow Datasets, as on a JAX GPU image that has neither.

The quickstart, cut short, runs in a subprocess where importing either fails; it must train,
write results.json and TensorBoard scalars, print the progress lines, and say in one line what
is missing. A TFDS source there is one `error:` line.
"""

import json
import os
import pathlib
import sys

import pytest

from jaxcls import data
from jaxcls.errors import UserError
from tests.conftest import run_python, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]
BLOCKED = ('tensorflow', 'tensorflow_datasets')

# Runs main.py with `import tensorflow` and `import tensorflow_datasets` failing, as where they
# are not installed; then reads the run's event files back, still without them.
WITHOUT_TF = f'''
import json, runpy, sys
for name in {BLOCKED!r}:
  sys.modules[name] = None  # `import name` now raises ImportError
workdir = sys.argv[1]
sys.argv = ['main.py', *sys.argv[2:], '--workdir=' + workdir]
try:
  runpy.run_path('main.py', run_name='__main__')
except SystemExit as e:
  status = e.code
from jaxcls import report
scalars = report.read_scalars(workdir, ('train_loss', 'eval_accuracy', 'learning_rate'))
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r} and sys.modules[m])
print('RESULT ' + json.dumps({{'status': status, 'scalars': scalars, 'loaded': loaded}}))
'''


def test_quickstart_runs_without_tensorflow(tmp_path, xla_cache):
  workdir = tmp_path / 'run'
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'JAX_COMPILATION_CACHE_DIR': str(xla_cache),
         'PYTHONPATH': str(REPO)}
  done = run_python('-c', WITHOUT_TF, str(workdir), '--config=configs/quickstart.py',
                    '--config.num_epochs=1', '--config.dataset.train_split=train[:512]',
                    '--config.schedule.warmup_epochs=0', '--config.log_every_steps=4',
                    timeout=300, env=env)
  result = json.loads(done.stdout.split('RESULT ', 1)[1])
  assert result['status'] in (0, None), done.stderr[-3000:]
  assert result['loaded'] == []
  log = done.stderr
  assert ("Not installed: tensorflow, tensorflow_datasets; unavailable without them: "
          "dataset.source='tfds'. Everything else works.") in log
  assert 'Compiling the train step' in log and 'First step: ' in log
  assert 'step 8/8 (100.0%, epoch 1.0)' in log  # the last step always gets a progress line
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == 8 and results['epoch'] == 1
  # 512 images at batch 64: 8 steps, logged every 4; one evaluation, at the end.
  assert [step for step, _, _ in result['scalars']['train_loss']] == [4, 8]
  assert [step for step, _, _ in result['scalars']['learning_rate']] == [4, 8]
  (step, _, accuracy), = result['scalars']['eval_accuracy']
  assert step == 8 and accuracy == pytest.approx(results['test_accuracy'], abs=1e-6)
  assert len(list(workdir.glob('events.out.tfevents.*'))) == 1


def test_a_tfds_source_without_tensorflow_is_one_clear_error(monkeypatch, tmp_path):
  for name in BLOCKED:
    monkeypatch.setitem(sys.modules, name, None)
  config = tiny_config().dataset
  config.update(source='tfds', name='cifar10', data_dir=str(tmp_path))
  with pytest.raises(UserError, match=r"^dataset.source: 'tfds' needs tensorflow, which is not "
                                      r"installed; pip install tensorflow-cpu "
                                      r"tensorflow-datasets, or for data on disk set "
                                      r"dataset.source='folder'"):
    data.load_dataset(config)

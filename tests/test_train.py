"""End to end through `train_and_evaluate`: a tiny run, exact resume, sharded == single device."""

import json
import logging
import os
import pathlib
import shutil
import textwrap

import jax
import numpy as np
import pytest
from absl import logging as absl_logging

from jaxcls import train
from jaxcls.errors import UserError
from tests.conftest import run_python, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves((state.params, state.batch_stats))]


def test_tiny_run_trains_and_writes_results(tmp_path):
  config = tiny_config(num_epochs=3)
  state = train.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / 'results.json').read_text())
  steps = 3 * (256 // 32)
  assert int(state.step) == results['step'] == steps
  assert results['epoch'] == 3
  assert results['params'] == sum(x.size for x in jax.tree.leaves(state.params))
  assert results['eval_size'] == 100
  for key in ('test_accuracy', 'wall_time_s', 'train_images_per_sec'):
    assert results[key] > 0
  assert results['test_accuracy'] > 0.3  # 10 classes; an untrained net scores about 0.1
  assert (tmp_path / 'config.json').exists()
  assert sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir()
                if p.name.isdigit()) == [8, 16, 24]
  assert list(tmp_path.glob('events.out.tfevents.*'))  # TensorBoard summaries


def test_finished_run_only_rereports(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  absl_logging.set_verbosity(absl_logging.INFO)
  config = tiny_config(num_epochs=1)
  first = train.train_and_evaluate(config, str(tmp_path))
  results = (tmp_path / 'results.json').read_text()
  second = train.train_and_evaluate(config, str(tmp_path))
  assert (tmp_path / 'results.json').read_text() == results
  assert int(second.step) == int(first.step)
  assert any('already finished' in r.getMessage() for r in caplog.records)


def test_resume_is_bitwise_exact(tmp_path):
  """2N steps straight == N steps, restart, N more (CPU)."""
  config = tiny_config(num_epochs=2, checkpoint_every_steps=8, keep_checkpoints=5,
                       **{'model.survival_prob': 0.5, 'mix.name': 'cutmix',
                          'augment.cutout_size': 4})
  straight = train.train_and_evaluate(config, str(tmp_path / 'a'))
  resumed_dir = tmp_path / 'b'
  train.train_and_evaluate(config, str(resumed_dir))
  # Forget everything after step 8 = N, as if the run had been stopped there.
  shutil.rmtree(resumed_dir / 'checkpoints' / '16')
  (resumed_dir / 'results.json').unlink()
  resumed = train.train_and_evaluate(config, str(resumed_dir))
  assert int(resumed.step) == int(straight.step) == 16
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_steps_per_dispatch_does_not_change_the_result(tmp_path):
  one = train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path / 'one'))
  many = train.train_and_evaluate(tiny_config(num_epochs=1, steps_per_dispatch=3,
                                              log_every_steps=8), str(tmp_path / 'many'))
  # Same steps, same numbers up to rounding: XLA fuses across the unrolled steps of a call, so
  # a few values differ in the last bit (a missed or repeated step would move them by ~1e-3).
  for a, b in zip(_leaves(one), _leaves(many)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_resume_with_another_model_is_a_clear_error(tmp_path):
  train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  (tmp_path / 'results.json').unlink()
  with pytest.raises(UserError, match='use a new --workdir'):
    train.train_and_evaluate(tiny_config(num_epochs=2, **{'model.base_width': 8}),
                             str(tmp_path))


def test_init_from_takes_the_weights_of_another_run(tmp_path):
  source = train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path / 'src'))
  config = tiny_config(num_epochs=1, init_from=str(tmp_path / 'src'), **{'optim.lr': 0.0})
  config.optim.weight_decay = 0.0
  target = train.train_and_evaluate(config, str(tmp_path / 'dst'))
  # lr 0: the weights stay those of the source run (batch statistics keep moving).
  for a, b in zip(jax.tree.leaves(source.params), jax.tree.leaves(target.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


_SHARDED = textwrap.dedent('''
    import os, sys
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'
    import jax, numpy as np
    sys.path.insert(0, {repo!r})
    from jaxcls import train
    from tests.conftest import tiny_config
    assert jax.device_count() == 4
    config = tiny_config(**{config!r})
    state = train.train_and_evaluate(config, {workdir!r})
    np.savez({out!r}, *[np.asarray(x) for x in jax.tree.leaves((state.params, state.batch_stats))])
''')


@pytest.mark.slow  # a 4-device main.py subprocess compiles its own step: ~25 s
def test_sharded_step_equals_single_device(tmp_path):
  # Two steps (momentum included) with every random stream in use: mixing, drop path, crops.
  overrides = {'num_epochs': 1, 'dataset.train_split': 'train[:64]', 'mix.name': 'mixup',
               'model.survival_prob': 0.5, 'augment.cutout_size': 4}
  out = tmp_path / 'sharded.npz'
  script = _SHARDED.format(repo=str(REPO), workdir=str(tmp_path / 'sharded'), out=str(out),
                           config=overrides)
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  done = run_python('-c', script, env=env)
  assert done.returncode == 0, done.stderr[-3000:]
  single = train.train_and_evaluate(tiny_config(**overrides), str(tmp_path / 'single'))
  sharded = np.load(out)
  for i, a in enumerate(_leaves(single)):
    np.testing.assert_allclose(a, sharded[f'arr_{i}'], rtol=1e-5, atol=1e-5)


def test_batch_not_divisible_by_devices_is_a_clear_error():
  from jaxcls import parallel
  with pytest.raises(UserError, match='batch_size: 30 does not divide over the 4 devices'):
    parallel.check_batch_size('batch_size', 30, 4)
  parallel.check_batch_size('batch_size', 32, 4)


@pytest.mark.parametrize('mode', ['hard', 'soft'])
def test_patchup_trains_end_to_end(tmp_path, monkeypatch, mode):
  """mix.name=patchup_* reaches the train step's forward pass and the run still learns."""
  calls = []
  original = train.patchup.PatchUp.__call__

  def spy(self, *args, **kwargs):
    calls.append(self)
    return original(self, *args, **kwargs)

  monkeypatch.setattr(train.patchup.PatchUp, '__call__', spy)
  config = tiny_config(num_epochs=3, **{'mix.name': f'patchup_{mode}'})
  train.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert calls and {c.mode for c in calls} == {mode}  # traced into the train step
  assert calls[0].prob == {'hard': 0.7, 'soft': 1.0}[mode]
  assert np.isfinite(results['train_loss'])
  # 10 classes: an untrained net scores about 0.1; PatchUp learns more slowly than plain runs.
  assert results['test_accuracy'] > 0.2

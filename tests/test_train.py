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


def test_fractional_epochs_end_inside_an_epoch(tmp_path):
  """1.5 epochs of 8 steps: 12 steps, evaluated after epoch 1 and at the end."""
  state = train.train_and_evaluate(tiny_config(num_epochs=1.5), str(tmp_path))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert int(state.step) == results['step'] == 12 and results['epoch'] == 1.5
  assert sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir()
                if p.name.isdigit()) == [8, 12]
  from jaxcls.report import curves  # pylint: disable=g-import-not-at-top
  epochs = [value for _, _, value in curves.read_scalars(str(tmp_path), ('epoch',))['epoch']]
  assert epochs == [1.0, 1.5]


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


def _straight_and_resumed(config, tmp_path) -> tuple[train.TrainState, train.TrainState]:
  """The final states of `config` (16 steps, a checkpoint every 8) run straight, and run again
  with everything after step 8 forgotten, as if stopped there, then resumed."""
  straight = train.train_and_evaluate(config, str(tmp_path / 'a'))
  resumed_dir = tmp_path / 'b'
  train.train_and_evaluate(config, str(resumed_dir))
  shutil.rmtree(resumed_dir / 'checkpoints' / '16')
  (resumed_dir / 'results.json').unlink()
  resumed = train.train_and_evaluate(config, str(resumed_dir))
  assert int(resumed.step) == int(straight.step) == 16
  return straight, resumed


def test_resume_is_bitwise_exact(tmp_path):
  """2N steps straight == N steps, restart, N more (CPU)."""
  config = tiny_config(num_epochs=2, checkpoint_every_steps=8, keep_checkpoints=5,
                       **{'model.survival_prob': 0.5, 'mix.name': 'cutmix',
                          'augment.cutout_size': 4})
  straight, resumed = _straight_and_resumed(config, tmp_path)
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_lookahead_resume_is_bitwise_exact(tmp_path):
  """The weight average is checkpointed: stopped at step 8 (between averaging steps, so the
  average differs from the weights) and resumed equals straight, average included."""
  config = tiny_config(num_epochs=2, checkpoint_every_steps=8, keep_checkpoints=5,
                       **{'ema.decay': 0.9, 'ema.mode': 'lookahead', 'ema.every': 3})
  straight, resumed = _straight_and_resumed(config, tmp_path)
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # 16 is not a multiple of 3: the last step reset the weights to the average.
  average = jax.tree.leaves((straight.ema['params'], straight.ema['batch_stats']))
  for a, b in zip(average, _leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), b)


@pytest.fixture(scope='module')
def one_epoch(tmp_path_factory):
  """Final variables and results of the tiny config's 1-epoch run."""
  workdir = tmp_path_factory.mktemp('one_epoch')
  state = train.train_and_evaluate(tiny_config(num_epochs=1), str(workdir))
  return _leaves(state), json.loads((workdir / 'results.json').read_text())


def test_steps_per_dispatch_does_not_change_the_result(one_epoch, tmp_path):
  many = train.train_and_evaluate(tiny_config(num_epochs=1, steps_per_dispatch=3,
                                              log_every_steps=8), str(tmp_path / 'many'))
  # Same steps, same numbers up to rounding: XLA fuses across the unrolled steps of a call, so
  # a few values differ in the last bit (a missed or repeated step would move them by ~1e-3).
  for a, b in zip(one_epoch[0], _leaves(many)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_precise_bn_changes_the_eval_and_not_the_training(one_epoch, tmp_path):
  config = tiny_config(num_epochs=1, **{'eval.recompute_bn_batches': 3})
  state = train.train_and_evaluate(config, str(tmp_path))
  for a, b in zip(one_epoch[0], _leaves(state)):
    np.testing.assert_array_equal(a, b)
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['test_loss'] != one_epoch[1]['test_loss']


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


def _tiny_model_and_state(config):
  from jaxcls import models, optim  # pylint: disable=g-import-not-at-top
  model = models.create_model('resnet18', num_classes=10, **train._model_overrides(config))  # pylint: disable=protected-access
  tx, _ = optim.create_optimizer(config, 8)
  return model, tx, train.create_train_state(model, tx, (32, 32, 1), jax.random.key(0))


def test_tta_logits_are_the_weighted_average_of_the_passes():
  """eval.tta='flip_translate': the eval loss and accuracy are those of 1/4 (image + mirror) +
  1/8 (each of the four one-pixel-shifted views), one forward pass per view."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxcls import parallel  # pylint: disable=g-import-not-at-top
  from jaxcls.data import augment as augment_lib  # pylint: disable=g-import-not-at-top
  model, _, state = _tiny_model_and_state(tiny_config())
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (16, 32, 32, 1), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, 16).astype(np.int32))
  transform = augment_lib.make_eval_transform((127.5,), (64.0,))
  eval_fn = train.make_eval_fn(model, transform, batch_size=16, mesh=parallel.make_mesh(),
                               tta='flip_translate')
  got = eval_fn(variables, images, labels, 0).compute()
  x = np.asarray(images)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  views = [x, padded[:, :32, :32], padded[:, 2:, 2:]]
  forward = jax.jit(lambda v: model.apply(variables, transform(v), train=False))
  passes = lambda v: np.asarray(forward(jnp.asarray(np.ascontiguousarray(v))))
  logits = sum(w * (passes(v) + passes(v[:, :, ::-1])) / 2
               for w, v in zip((0.5, 0.25, 0.25), views))
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  assert float(got['loss']) == pytest.approx(float(loss), rel=1e-5)
  assert float(got['accuracy']) == np.mean(logits.argmax(-1) == np.asarray(labels))
  plain = train.make_eval_fn(model, transform, batch_size=16, mesh=parallel.make_mesh())
  assert float(plain(variables, images, labels, 0).compute()['loss']) == pytest.approx(
      float(optax.softmax_cross_entropy_with_integer_labels(passes(x), labels).mean()), rel=1e-5)


def test_summed_loss_is_the_mean_times_the_batch(momentum=0.9):
  """One step with the summed loss at lr / B equals one with the mean loss at lr (no decay), and
  both log the per-example mean."""
  from jaxcls import parallel  # pylint: disable=g-import-not-at-top
  from jaxcls.data import augment as augment_lib, mixing  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  batch, results = 32, {}
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (batch, 32, 32, 1), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, batch).astype(np.int32))
  for reduction, lr in (('mean', 0.1), ('sum', 0.1 / batch)):
    config = tiny_config(**{'optim.lr': lr, 'optim.weight_decay': 0.0,
                            'optim.momentum': momentum, 'schedule.name': 'constant'})
    model, tx, state = _tiny_model_and_state(config)
    start = _leaves(state)
    augment = augment_lib.make_augment(config.augment, (127.5,), (64.0,))
    fn = train.make_train_fn(model, tx, augment, mixing.make_mix(config.mix, 10),
                             train_key=jax.random.key(1), batch_size=batch, steps_per_epoch=1,
                             mesh=parallel.make_mesh(), num_steps=2, loss_reduction=reduction)
    results[reduction] = fn(state, images, labels, jnp.stack([jnp.arange(batch)] * 2), 0)
  (mean_state, mean_metrics), (sum_state, sum_metrics) = results['mean'], results['sum']
  assert float(sum_metrics.compute()['loss']) == pytest.approx(
      float(mean_metrics.compute()['loss']), rel=1e-5)
  for a, b in zip(_leaves(mean_state), _leaves(sum_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  moved = [np.abs(a - b).max() for a, b in zip(_leaves(mean_state), start)]
  assert max(moved) > 1e-3  # the step did move the weights


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

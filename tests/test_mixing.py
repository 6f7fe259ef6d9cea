"""Tests for jaxcls.data.mixing: Mixup and CutMix recovered sample by sample, targets, configs."""

import os
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from jaxcls.data import mixing
from jaxcls.errors import UserError
from tests.conftest import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

mixup = jax.jit(mixing.mixup, static_argnames=('alpha', 'prob'))
cutmix = jax.jit(mixing.cutmix, static_argnames=('alpha', 'prob', 'box'))


def _tagged_batch(batch, height, width, seed=0):
  """Images whose channel 0 is the sample's index; targets one-hot over the sample indices.

  Every output pixel and target row then says which samples it came from and in what share.
  """
  noise = np.random.default_rng(seed).normal(size=(batch, height, width, 1))
  index = np.broadcast_to(np.arange(batch, dtype=np.float64)[:, None, None, None],
                          (batch, height, width, 1))
  images = np.concatenate([index, noise], axis=-1).astype(np.float32)
  targets = np.eye(batch, dtype=np.float32)
  return images, targets


def _partners(targets):
  """Own weight and partner per sample, read from targets mixed over one-hot sample indices."""
  batch = targets.shape[0]
  own = targets[np.arange(batch), np.arange(batch)]
  others = targets.copy()
  others[np.arange(batch), np.arange(batch)] = -1
  partner = np.where(own < 1, others.argmax(1), np.arange(batch))
  return own, partner


@pytest.mark.parametrize('alpha', [0.2, 1.0])
def test_mixup_mixes_images_and_targets_with_one_beta_lambda(alpha):
  batch = 2048
  images, targets = _tagged_batch(batch, 2, 2)
  out_images, out_targets = map(np.asarray, mixup(jax.random.key(0), images, targets,
                                                   alpha=alpha, prob=1.0))
  np.testing.assert_allclose(out_targets.sum(1), 1, rtol=1e-6)
  lam, partner = _partners(out_targets)
  mixed = partner != np.arange(batch)
  assert mixed.mean() > 0.9
  # One permutation for the batch: no sample is the partner of two.
  assert np.unique(partner[mixed]).size == mixed.sum()
  np.testing.assert_allclose(out_targets[mixed, partner[mixed]], 1 - lam[mixed], atol=1e-6)
  expected = (lam[:, None, None, None] * images
              + (1 - lam[:, None, None, None]) * images[partner])
  np.testing.assert_allclose(out_images, expected, rtol=1e-5, atol=1e-4)
  # Beta(alpha, alpha) in float32 rounds some draws to exactly 1; they count as draws here.
  assert abs(lam.mean() - 0.5) < 0.03
  beta_var = 1 / (4 * (2 * alpha + 1))
  assert abs(lam.var() - beta_var) < 0.1 * beta_var


def test_mixup_prob_is_per_sample_and_zero_is_identity():
  batch = 2048
  images, targets = _tagged_batch(batch, 2, 2)
  _, out_targets = mixup(jax.random.key(1), images, targets, alpha=1.0, prob=0.25)
  lam, _ = _partners(np.asarray(out_targets))
  # A sample that is not mixed keeps l = 1 (Beta(1, 1) almost never draws exactly 1).
  assert abs((lam < 1).mean() - 0.25) < 0.04
  out_images, out_targets = mixup(jax.random.key(1), images, targets, alpha=1.0, prob=0.0)
  np.testing.assert_array_equal(out_images, images)
  np.testing.assert_array_equal(out_targets, targets)


def _side_probabilities(length):
  """P(side = k) for side = floor(length * sqrt(u)), u = 1 - l ~ U(0, 1) (alpha = 1)."""
  k = np.arange(length)
  return ((k + 1) ** 2 - k ** 2) / length ** 2


def _box_extents(side, length, box):
  """[start, end) for every equally likely draw of the box's position along one axis."""
  if box == 'center':
    starts = np.arange(length) - side // 2
  else:
    starts = np.arange(length)
  return np.clip(starts, 0, length), np.clip(starts + side, 0, length)


@pytest.mark.parametrize('box', ['center', 'corner'])
def test_cutmix_pastes_a_partner_rectangle_and_weights_targets_by_its_area(box):
  batch, length = 2048, 8
  images, targets = _tagged_batch(batch, length, length)
  out_images, out_targets = map(np.asarray, cutmix(jax.random.key(2), images, targets,
                                                    alpha=1.0, prob=1.0, box=box))
  np.testing.assert_allclose(out_targets.sum(1), 1, rtol=1e-6)
  own, partner = _partners(out_targets)
  mixed = partner != np.arange(batch)
  assert np.unique(partner[mixed]).size == mixed.sum()  # one permutation for the batch

  source = out_images[..., 0]
  pasted = source != np.arange(batch)[:, None, None]
  rows, cols = pasted.any(2), pasted.any(1)
  np.testing.assert_array_equal(pasted, rows[:, :, None] & cols[:, None, :])  # a rectangle
  area = pasted.sum((1, 2))
  np.testing.assert_allclose(1 - own, area / length ** 2, atol=1e-6)
  # Inside the box every pixel (all channels) is the partner's, outside it the sample's own.
  expected = np.where(pasted[..., None], images[partner], images)
  np.testing.assert_array_equal(out_images, expected)

  # Sides and positions: mean pasted area and how often the box starts at the top edge, against
  # exact enumeration over the side distribution and the uniform position.
  expected_area = expected_top = expected_nonempty = 0.0
  for side, p_side in enumerate(_side_probabilities(length)):
    start, end = _box_extents(side, length, box)
    expected_area += p_side * np.mean(end - start) ** 2
    if side:
      expected_nonempty += p_side
      expected_top += p_side * np.mean(start == 0)
  assert abs(area.mean() / length ** 2 - expected_area / length ** 2) < 0.02
  first_row = np.where(rows.any(1), rows.argmax(1), -1)
  nonempty = area > 0
  assert abs(nonempty.mean() - expected_nonempty) < 0.03
  top_rate = (first_row[nonempty] == 0).mean()
  assert abs(top_rate - expected_top / expected_nonempty) < 0.04, top_rate
  # Unclipped boxes are squares of side floor(L * sqrt(1 - l)).
  height, width = rows.sum(1), cols.sum(1)
  last_row = np.where(rows.any(1), length - rows[:, ::-1].argmax(1), -1)
  first_col = np.where(cols.any(1), cols.argmax(1), -1)
  last_col = np.where(cols.any(1), length - cols[:, ::-1].argmax(1), -1)
  inner = nonempty & (first_row > 0) & (last_row < length) & (first_col > 0) & (
      last_col < length)
  assert inner.sum() > 100
  np.testing.assert_array_equal(height[inner], width[inner])


def test_cutmix_prob_is_per_sample_and_zero_is_identity():
  batch = 2048
  images, targets = _tagged_batch(batch, 8, 8)
  _, out_targets = cutmix(jax.random.key(3), images, targets, alpha=1.0, prob=0.5)
  own, partner = _partners(np.asarray(out_targets))
  mixed = (own < 1) & (partner != np.arange(batch))
  # A box of side floor(8 sqrt(1 - l)) is empty for 1 - l < 1/64.
  assert abs(mixed.mean() - 0.5 * 63 / 64) < 0.04
  out_images, out_targets = cutmix(jax.random.key(3), images, targets, alpha=1.0, prob=0.0)
  np.testing.assert_array_equal(out_images, images)
  np.testing.assert_array_equal(out_targets, targets)


def _mix_config(**overrides):
  config = default.get_config().mix
  config.update(overrides)
  return config


def test_make_mix_none_gives_smoothed_one_hot_targets():
  labels = jnp.array([0, 3, 9], jnp.int32)
  images = jnp.zeros((3, 4, 4, 3))
  mix = jax.jit(mixing.make_mix(_mix_config(name='none'), 10, 0.1))
  out_images, targets = mix(jax.random.key(0), images, labels)
  assert targets.dtype == jnp.float32 and targets.shape == (3, 10)
  np.testing.assert_array_equal(out_images, images)
  expected = np.full((3, 10), 0.01, np.float32)
  expected[np.arange(3), np.asarray(labels)] = 0.91
  np.testing.assert_allclose(targets, expected, rtol=1e-6)
  np.testing.assert_allclose(
      targets, optax.smooth_labels(jax.nn.one_hot(labels, 10), 0.1), rtol=1e-7)


@pytest.mark.parametrize('name,box', [('mixup', 'center'), ('cutmix', 'center'),
                                      ('cutmix', 'corner')])
def test_make_mix_smooths_then_mixes(name, box):
  batch, num_classes = 256, 10
  labels = jnp.asarray(np.random.default_rng(0).integers(0, num_classes, batch), jnp.int32)
  images = jnp.asarray(np.random.default_rng(1).normal(size=(batch, 8, 8, 3)), jnp.float32)
  config = _mix_config(name=name, alpha=1.0, prob=1.0, cutmix_box=box)
  key = jax.random.key(4)
  out_images, targets = jax.jit(mixing.make_mix(config, num_classes, 0.2))(key, images, labels)
  np.testing.assert_allclose(targets.sum(1), 1, rtol=1e-6)
  assert float(targets.min()) >= 0.2 / num_classes - 1e-6
  smoothed = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), 0.2)
  if name == 'mixup':
    expected = mixup(key, images, smoothed, alpha=1.0, prob=1.0)
  else:
    expected = cutmix(key, images, smoothed, alpha=1.0, prob=1.0, box=box)
  np.testing.assert_allclose(out_images, expected[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(targets, expected[1], rtol=1e-6, atol=1e-6)
  assert not np.allclose(out_images, images)


@pytest.mark.parametrize('overrides,smoothing,field', [
    (dict(name='manifold_mixup'), 0.0, 'mix.name'),
    (dict(name='mixup', alpha=0.0), 0.0, 'mix.alpha'),
    (dict(name='cutmix', alpha=-1.0), 0.0, 'mix.alpha'),
    (dict(name='mixup', prob=1.5), 0.0, 'mix.prob'),
    (dict(name='cutmix', prob=-0.5), 0.0, 'mix.prob'),
    (dict(name='cutmix', cutmix_box='random'), 0.0, 'mix.cutmix_box'),
    (dict(), 1.0, 'label_smoothing'),
    (dict(), -0.1, 'label_smoothing'),
])
def test_make_mix_rejects_bad_config(overrides, smoothing, field):
  with pytest.raises(UserError, match=f'^{field}: ') as info:
    mixing.make_mix(_mix_config(**overrides), 10, smoothing)
  assert '\n' not in str(info.value)


_SHARDED_SCRIPT = textwrap.dedent('''
    import os
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from configs import default
    from jaxcls.data import augment as augment_lib, mixing

    assert jax.device_count() == 4, jax.devices()
    config = default.get_config()
    config.augment.update(crop_padding=4, pad_mode='symmetric', cutout_size=8, cutout_prob=0.5)
    mean, std = (125.31, 122.95, 113.87), (62.99, 62.09, 66.70)
    augment = augment_lib.make_augment(config.augment, mean, std)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 16, 16, 3), np.uint8)
    labels = rng.integers(0, 10, (64,)).astype(np.int32)
    batch = NamedSharding(Mesh(np.array(jax.devices()), ('batch',)), P('batch'))
    for name in ('mixup', 'cutmix'):
      config.mix.update(name=name, alpha=0.4 if name == 'mixup' else 1.0, prob=0.8)
      mix = mixing.make_mix(config.mix, 10, 0.1)

      def step(key, images, labels):
        key_augment, key_mix = jax.random.split(key)
        return mix(key_mix, augment(key_augment, images), labels)

      key = jax.random.key(11)
      single = jax.jit(step)(key, images, labels)
      sharded = jax.jit(step, out_shardings=(batch, batch))(
          key, jax.device_put(images, batch), jax.device_put(labels, batch))
      assert len(sharded[0].sharding.device_set) == 4
      # Identical draws; only XLA's fusion (e.g. FMA contraction) may move the last bit.
      for a, b in zip(single, sharded):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)
    print('sharded == single')
''')


def test_sharded_batch_gives_the_same_draws_as_one_device():
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, env.get('PYTHONPATH')]))
  result = run_python('-c', _SHARDED_SCRIPT, cwd=ROOT, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'sharded == single' in result.stdout

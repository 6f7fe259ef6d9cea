"""airbench (jaxcls/models/airbench.py): whitening filters, Dirac init, counts, the frozen layer
in a compiled train step, and the data-dependent init on fresh starts only."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxcls import data, models, optim, parallel, train
from jaxcls.data import augment as augment_lib
from jaxcls.data import mixing
from jaxcls.models import airbench, layers
from tests.conftest import tiny_config

TINY = dict(widths=(8, 8, 8), whitening_images=64)


def _correlated_images(n=64, size=12, seed=0) -> np.ndarray:
  """NHWC float images whose neighbouring pixels and channels are correlated, with a spread of
  patch eigenvalues (about 1000:1), as natural images have."""
  rng = np.random.default_rng(seed)
  noise = rng.normal(size=(n, size + 2, size + 2, 3))
  smooth = sum(noise[:, i:i + size, j:j + size] for i in range(3) for j in range(3)) / 3
  mixing_matrix = np.array([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.1]])
  return (smooth @ mixing_matrix + 0.02 * rng.normal(size=(n, size, size, 3))).astype(np.float32)


def _second_moment(y: jax.Array) -> np.ndarray:
  flat = np.asarray(y, np.float64).reshape(-1, y.shape[-1])
  return flat.T @ flat / len(flat)


def _whiten(kernel: jax.Array, images: np.ndarray) -> jax.Array:
  """The model's whitening conv (bias 0) with `kernel`."""
  module = airbench.Whitening(kernel.shape[0])
  return module.apply({'params': {airbench.FROZEN_KERNEL: kernel,
                                  'bias': jnp.zeros(kernel.shape[-1])}}, images)


def test_whitening_filters_whiten_the_patches():
  images = _correlated_images()
  kernel = airbench.whitening_filters(jnp.asarray(images), kernel_size=2, eps=0.0)
  assert kernel.shape == (2, 2, 3, 24)
  covariance = np.asarray(airbench.patch_covariance(jnp.asarray(images), 2), np.float64)
  eigenvalues = np.linalg.eigvalsh(covariance)
  assert eigenvalues.max() / eigenvalues.min() > 100  # a real whitening job
  # The conv's first half maps the 2x2 patches to outputs of identity second moment: the
  # kernel's (row, column, channel) order matches the conv's, and the scaling is 1/sqrt(lambda).
  out = _whiten(kernel, images)
  np.testing.assert_allclose(_second_moment(out[..., :12]), np.eye(12), atol=2e-3)
  np.testing.assert_array_equal(np.asarray(out[..., 12:]), -np.asarray(out[..., :12]))


def test_whitening_eps_damps_the_small_eigenvalues_in_decreasing_order():
  images = _correlated_images()
  eps = 5e-4
  kernel = airbench.whitening_filters(jnp.asarray(images), kernel_size=2, eps=eps)
  eigenvalues = np.sort(np.linalg.eigvalsh(
      np.asarray(airbench.patch_covariance(jnp.asarray(images), 2), np.float64)))[::-1]
  # v_i / sqrt(lambda_i + eps) gives outputs of variance lambda_i / (lambda_i + eps), by
  # decreasing lambda_i, uncorrelated.
  expected = np.diag(eigenvalues / (eigenvalues + eps))
  np.testing.assert_allclose(_second_moment(_whiten(kernel, images)[..., :12]), expected,
                             atol=2e-3)


def test_patch_covariance_by_hand():
  images = np.arange(2 * 3 * 3 * 1, dtype=np.float32).reshape(2, 3, 3, 1)
  patches = np.array([[img[i, j], img[i, j + 1], img[i + 1, j], img[i + 1, j + 1]]
                      for img in images[..., 0] for i in range(2) for j in range(2)])
  np.testing.assert_allclose(airbench.patch_covariance(jnp.asarray(images), 2),
                             patches.T @ patches / len(patches), rtol=1e-6)


def test_dirac_init_makes_the_first_c_in_filters_identities():
  init = airbench.dirac_init()
  kernel = np.asarray(init(jax.random.key(0), (3, 3, 4, 6)))
  identity = np.zeros((3, 3, 4, 4))
  identity[1, 1, np.arange(4), np.arange(4)] = 1
  np.testing.assert_array_equal(kernel[..., :4], identity)
  rest = kernel[..., 4:]  # PyTorch's default: U(+-1/sqrt(fan_in)), fan_in = 3*3*4
  assert np.all(np.abs(rest) <= 1 / 6) and np.std(rest) > 0.05
  narrowing = np.asarray(init(jax.random.key(0), (3, 3, 6, 4)))  # C_out < C_in: 4 identities
  np.testing.assert_array_equal(narrowing, np.pad(identity, ((0, 0), (0, 0), (0, 2), (0, 0))))


def test_dirac_init_in_the_model():
  model = models.create_model('airbench94', **TINY)
  init = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))
  params = init(jnp.zeros((1, 16, 16, 3)))['params']
  conv1 = np.asarray(params['group1']['conv1']['kernel'])  # 24 -> 8: all 8 are identities
  np.testing.assert_array_equal(conv1[1, 1, :8, :8], np.eye(8))
  assert not conv1[1, 1, 8:].any() and not conv1[0].any()
  x = jax.random.normal(jax.random.key(1), (2, 5, 5, 8))
  conv2 = jax.lax.conv_general_dilated(x, params['group2']['conv2']['kernel'], (1, 1), 'SAME',
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(conv2, x, atol=1e-6)  # 8 -> 8: the identity map


def test_airbench94_counts_are_pinned():
  # By hand: whitening 2*2*3*24 frozen + 24 bias; groups (9*c_in*w + 9*w*w + 2*w BN biases);
  # Dense 256*10 without bias. PyTorch's parameters() also holds the 1,152 BN weights fixed at 1
  # (not stored here): 1,972,792.
  by_hand = 288 + 24 + 2560 + sum(9 * c * w + 9 * w * w + 2 * w
                                  for c, w in ((24, 64), (64, 256), (256, 256)))
  model = models.create_model('airbench94')
  assert models.count_params(model) == (by_hand, 2 * 2 * (64 + 256 + 256)) == (1_971_640, 2_304)
  # MACs: whiten at 31x31, each group's conv1 before its pool, conv2 after, Dense.
  macs = (31 * 31 * 12 * 24 + 31 * 31 * 9 * 24 * 64 + 15 * 15 * 9 * 64 * 64
          + 15 * 15 * 9 * 64 * 256 + 7 * 7 * 9 * 256 * 256 + 7 * 7 * 9 * 256 * 256
          + 3 * 3 * 9 * 256 * 256 + 256 * 10)
  assert models.count_macs(model) == macs == 118_147_360


def test_bn_has_no_scale_and_airbench_constants():
  model = models.create_model('airbench94', **TINY)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)),
                                                train=False))
  assert set(variables['params']['group1']['norm1']) == {'bias'}
  assert set(variables['params']['head']) == {'kernel'}
  assert (model.bn_momentum, model.bn_epsilon, model.logit_scale) == (0.6, 1e-12, 1 / 9)


def test_frozen_filters_never_decay():
  params = {'whiten': {airbench.FROZEN_KERNEL: np.zeros((2, 2, 3, 24)), 'bias': np.zeros(24)},
            'conv': {'kernel': np.zeros((3, 3, 24, 8))}}
  for on in layers.WEIGHT_DECAY_ON:
    assert layers.weight_decay_mask(params, on)['whiten'][airbench.FROZEN_KERNEL] is False
  assert layers.weight_decay_mask(params, 'all')['whiten']['bias'] is True


def _airbench_config(**overrides):
  """tiny_config with the airbench model: widths 4/8 on the 32x32x1 digits."""
  return tiny_config(**{'model.name': 'airbench94', 'model.base_width': None,
                        'model.stem_width': None, 'model.stage_sizes': None,
                        'model.convention': None, 'model.widths': (4, 8),
                        'model.whitening_images': 100, 'checkpoint_every_steps': 8,
                        'num_epochs': 1, **overrides})


def test_max_pool_floors_like_torch_and_matches_reduce_window():
  x = jax.random.normal(jax.random.key(0), (2, 31, 31, 3))
  pooled = airbench.max_pool(x, 2)
  assert pooled.shape == (2, 15, 15, 3)
  np.testing.assert_array_equal(pooled, nn.max_pool(x, (2, 2), (2, 2)))


def test_stride_2_whitening_halves_the_resolution():
  model = models.create_model('airbench94', widths=(8, 8), whitening_stride=2)
  # 32 -> 16 (2x2 stride 2) -> 16 conv, 8 pool -> 8 conv, 4 pool: the same parameters as stride 1.
  assert models.count_params(model) == models.count_params(
      models.create_model('airbench94', widths=(8, 8)))
  assert models.count_macs(model) == (16 * 16 * 12 * 24 + 16 * 16 * 9 * 24 * 8
                                      + 8 * 8 * 9 * 8 * 8 + 8 * 8 * 9 * 8 * 8
                                      + 4 * 4 * 9 * 8 * 8 + 8 * 10)


def test_recipe_groups_leave_the_whitening_bias_out_of_the_bn_biases():
  # The whitening conv holds a frozen kernel, so its bias is a conv's bias, not a norm's shift.
  model = models.create_model('airbench94', **TINY)
  params = models.macs.abstract_variables(model, (1, 16, 16, 3))['params']
  groups = ml_collections.ConfigDict({'bn_bias': {'kind': 'bn_bias'}})
  labels = optim.param_group_labels(params, groups)
  assert labels['whiten'] == {'bias': 'default', airbench.FROZEN_KERNEL: 'default'}
  assert labels['group1']['norm1']['bias'] == 'bn_bias'


def test_compiled_train_step_keeps_the_whitening_filters_and_trains_the_rest():
  """The data-initialised state, then two compiled steps of the tiny preset under SGD with
  weight decay on all params: the frozen kernel is bitwise unchanged, every other leaf moves."""
  config = _airbench_config()
  mesh = parallel.make_mesh()
  model = models.create_model('airbench94', num_classes=10, **TINY)
  tx, _ = optim.create_optimizer(config, 2)
  augment = augment_lib.make_augment(config.augment, (127.5,), (64.0,))
  train_fn = train.make_train_fn(model, tx, augment, mixing.make_mix(config.mix, 10),
                                 train_key=jax.random.key(1), batch_size=16, steps_per_epoch=2,
                                 mesh=mesh, num_steps=2)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (32, 16, 16, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, 32).astype(np.int32)
  normalized = augment_lib.normalize(images, (127.5,), (64.0,))
  state = train.create_train_state(model, tx, (16, 16, 1), jax.random.key(0),
                                   data_init_images=normalized)
  kernel = np.asarray(state.params['whiten'][airbench.FROZEN_KERNEL])
  np.testing.assert_allclose(kernel, airbench.whitening_filters(normalized), rtol=1e-6)
  before = jax.tree.map(np.asarray, state.params)
  state, metrics = train_fn(state, images, labels, jnp.stack([jnp.arange(32)] * 2), 0)
  assert np.isfinite(float(metrics.compute()['loss']))
  np.testing.assert_array_equal(np.asarray(state.params['whiten'][airbench.FROZEN_KERNEL]),
                                kernel)
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != b)), state.params, before)
  moved['whiten'].pop(airbench.FROZEN_KERNEL)
  assert all(jax.tree.leaves(moved)), moved


def test_data_init_runs_on_a_fresh_start_only(tmp_path, monkeypatch):
  calls = []
  data_init = airbench.AirBench.data_init

  def counted(self, variables, images):
    calls.append(images.shape)
    return data_init(self, variables, images)

  monkeypatch.setattr(airbench.AirBench, 'data_init', counted)
  first = train.train_and_evaluate(_airbench_config(), str(tmp_path))
  assert calls == [(100, 32, 32, 1)]
  # The filters of the first 100 train images, normalised by the train split's channel stats.
  train_split, _, _ = data.load_dataset(_airbench_config().dataset)
  images = augment_lib.normalize(train_split.images[:100],
                                 *augment_lib.channel_stats(train_split.images))
  kernel = np.asarray(first.params['whiten'][airbench.FROZEN_KERNEL])
  np.testing.assert_allclose(kernel, airbench.whitening_filters(images), rtol=1e-3)

  calls.clear()
  # Extended to 2 epochs: allowed once config.json (which pins num_epochs) is gone.
  (tmp_path / 'config.json').unlink()
  second = train.train_and_evaluate(_airbench_config(num_epochs=2), str(tmp_path))
  assert calls == []  # resumed from step 8: the filters come from the checkpoint
  assert int(second.step) == 16
  np.testing.assert_array_equal(np.asarray(second.params['whiten'][airbench.FROZEN_KERNEL]),
                                kernel)

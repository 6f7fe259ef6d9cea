"""ResNeSt, TResNet and IBN-Net (issue 9): the published ImageNet counts, the CIFAR forms' counts
and MACs, the layers they add (split attention, SpaceToDepth, blur pool, instance-batch norm),
and one compiled train step per family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcls.errors import UserError
from jaxcls.models import count_macs, count_params, create_model, layers
from jaxcls.models import resnest, tresnet
from tests.conftest import eval_forward_macs, numpy_variables

IMAGENET = (1, 224, 224, 3)
CIFAR = (1, 32, 32, 3)


# --- The published counts: the ImageNet forms (issue 9; timm and torchvision).

@pytest.mark.parametrize('name,overrides,num_classes,params,batch_stats', [
    ('resnest50d', {}, 1000, 27_483_240, 64_576),  # timm resnest50d
    ('resnest50d', {}, 10, 25_454_730, 64_576),
    ('tresnet_m', {}, 1000, 31_389_032, 61_568),  # timm tresnet_m
    ('tresnet_m', {}, 10, 29_360_522, 61_568),
    ('resnet50_ibn_a', {}, 1000, 25_557_032, 50_880),  # ResNet-50's params
    ('resnet50_ibn_a', {'ibn_stages': 0}, 1000, 25_557_032, 53_120),  # torchvision resnet50
])
def test_imagenet_form_counts(name, overrides, num_classes, params, batch_stats):
  model = create_model(name, num_classes=num_classes, stem='imagenet', **overrides)
  assert count_params(model, IMAGENET) == (params, batch_stats)


def _ibn_channels(stage_sizes, base_width, ibn_stages=3):
  """InstanceNorm channels of IBN-a: half of each unit's first norm in the first stages."""
  return sum(n * (base_width * 2**i) // 2
             for i, n in enumerate(stage_sizes[:ibn_stages]))


def test_ibn_batch_stats_shrink_by_the_instance_norm_channels():
  # IN keeps no running mean/var: 2 numbers fewer per IN channel, the parameters unchanged.
  assert _ibn_channels((3, 4, 6, 3), 64) == 3 * 32 + 4 * 64 + 6 * 128 == 1_120
  assert 53_120 - 2 * _ibn_channels((3, 4, 6, 3), 64) == 50_880
  for name, base, sizes in [('resnet35b', 'resnet35b_ibn_a', (2, 3, 4, 2)),
                            ('resnet50b', 'resnet50b_ibn_a', (3, 4, 6, 3)),
                            ('resnet101b', 'resnet101b_ibn_a', (3, 4, 23, 3))]:
    plain_params, plain_stats = count_params(create_model(name))
    assert count_params(create_model(base)) == (
        plain_params, plain_stats - 2 * _ibn_channels(sizes, 16))


# --- The CIFAR forms: no published count, so pinned (params, batch_stats, MACs at 32x32x3).

@pytest.mark.parametrize('name,params,batch_stats,macs', [
    ('resnest50d', 25_454_730, 64_576, 1_666_881_536),
    ('tresnet_m', 3_162_130, 17_792, 382_458_240),  # 96 px; seed A's "3.2 M" is the total
    ('resnet50_ibn_a', 23_520_842, 50_880, 1_297_829_888),
    ('resnet35b_ibn_a', 866_010, 7_328, 51_827_712),
    ('resnet50b_ibn_a', 1_309_210, 10_800, 74_109_952),
    ('resnet101b_ibn_a', 2_506_010, 22_768, 149_869_568),
])
def test_cifar_form_counts_and_macs(name, params, batch_stats, macs):
  model = create_model(name)
  assert count_params(model, CIFAR) == (params, batch_stats)
  assert count_macs(model, CIFAR) == macs


def test_tresnet_cifar_form_is_seed_a_total_and_scales_with_resolution():
  model = create_model('tresnet_m')
  assert round(sum(count_params(model, CIFAR)) / 1e6, 1) == 3.2
  # The conv MACs grow with the upsampled area; the Dense ones (SE of stages 1-3, head) do not.
  m96, m192 = (count_macs(create_model('tresnet_m', upsample=u), CIFAR) for u in (3, 6))
  dense = 3 * 2 * 64 * 16 + 4 * 2 * 128 * 32 + 11 * 2 * 64 * 8 + 512 * 10
  assert m192 - dense == 4 * (m96 - dense)


# --- Tiny presets: init-trace MACs are those of the eval forward; one compiled train step.

TINY = {
    'resnest50d': dict(stage_sizes=(1, 1, 1, 1), base_width=8, stem_width=8),
    'tresnet_m': dict(stage_sizes=(1, 1, 1, 1), width_factor=0.125, upsample=1),
    'resnet50_ibn_a': dict(stage_sizes=(1, 1, 1, 1), base_width=8),
    'resnet50b_ibn_a': dict(stage_sizes=(1, 1, 1, 1), base_width=4),
}


@pytest.mark.parametrize('name', TINY)
@pytest.mark.parametrize('stem', ['cifar', 'imagenet'])
def test_init_trace_counts_the_eval_forward(name, stem):
  fields = dict(TINY[name], **({'stem': stem} if name != 'resnet50b_ibn_a' else {}))
  model = create_model(name, **fields)
  shape = (1, 32, 32, 3)
  assert count_macs(model, shape) == eval_forward_macs(model, shape) > 0


@pytest.mark.parametrize('name', ['resnest50d', pytest.param('tresnet_m', marks=pytest.mark.slow),
                                  pytest.param('resnet50_ibn_a', marks=pytest.mark.slow)])
def test_compiled_train_step_gives_a_finite_loss_and_gradient(name):
  model = create_model(name, **TINY[name])
  variables = numpy_variables(model, (1, 32, 32, 3))
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(4, 32, 32, 3)), jnp.float32)
  labels = jnp.asarray([0, 1, 2, 3])

  @jax.jit
  def loss_and_grad(params, batch_stats):
    def loss_fn(params):
      logits, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x,
                                    train=True, mutable=['batch_stats'])
      log_probs = jax.nn.log_softmax(logits)
      return -jnp.mean(log_probs[jnp.arange(4), labels]), updates
    return jax.value_and_grad(loss_fn, has_aux=True)(params)

  (loss, updates), grads = loss_and_grad(variables['params'], variables['batch_stats'])
  assert np.isfinite(float(loss)) and float(loss) > 0
  assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
  moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(a != b)), updates['batch_stats'],
                                 variables['batch_stats'])
  assert all(jax.tree_util.tree_leaves(moved))  # every BN saw a training batch


# --- IBN-a: InstanceNorm on the first half of the channels, BN on the rest.

def test_instance_half_normalises_each_sample_alone_and_batch_half_does_not():
  module = layers.ibn_def('torch', jnp.float32, train=True)()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(3.0, 2.0, (4, 5, 5, 6)), jnp.float32)
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['InstanceNorm_0']['scale'].shape == (3,)
  assert variables['batch_stats']['BatchNorm_0']['mean'].shape == (3,)  # the BN half only

  def run(x):
    return np.asarray(module.apply(variables, x, mutable=['batch_stats'])[0])

  y = run(x)
  np.testing.assert_allclose(y[..., :3].mean(axis=(1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y[..., :3].var(axis=(1, 2)), 1.0, atol=1e-3)
  other = x.at[1:].set(x[1:] * 5.0 + 7.0)  # change the rest of the batch only
  z = run(other)
  np.testing.assert_allclose(z[0, ..., :3], y[0, ..., :3], atol=1e-6)
  assert np.abs(z[0, ..., 3:] - y[0, ..., 3:]).max() > 0.1
  # Evaluation uses no running statistics for the IN half either.
  eval_module = layers.ibn_def('torch', jnp.float32, train=False)()
  np.testing.assert_allclose(np.asarray(eval_module.apply(variables, x))[..., :3], y[..., :3],
                             atol=1e-5)


def test_ibn_sits_after_the_first_conv_of_the_units_of_stages_1_to_3():
  v2 = jax.eval_shape(lambda x: create_model('resnet50b_ibn_a', stage_sizes=(1, 2, 1, 1)).init(
      jax.random.key(0), x, train=False), jax.ShapeDtypeStruct(CIFAR, jnp.float32))['params']
  for stage, units in [(1, 1), (2, 2), (3, 1)]:
    for j in range(1, units + 1):
      unit = v2[f'stage{stage}_unit{j}']
      assert 'InstanceBatchNorm_0' in unit['PreActConv_1']
      assert 'BatchNorm_0' in unit['PreActConv_0'] and 'BatchNorm_0' in unit['PreActConv_2']
  assert 'BatchNorm_0' in v2['stage4_unit1']['PreActConv_1']
  v1 = jax.eval_shape(lambda x: create_model('resnet50_ibn_a', stage_sizes=(1, 1, 1, 1)).init(
      jax.random.key(0), x, train=False), jax.ShapeDtypeStruct(CIFAR, jnp.float32))['params']
  assert [('InstanceNorm_0' in v1[f'stage{i}_unit1']['norm1']) for i in range(1, 5)] == [
      True, True, True, False]


# --- ResNeSt: split attention.

def test_radix_softmax_weights_sum_to_one_over_the_splits_in_timm_order():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(2, 1, 1, 2 * 8)), jnp.float32)
  weights = np.asarray(resnest.radix_softmax(logits, radix=2, cardinality=1))
  assert weights.shape == (2, 1, 1, 2, 8)
  np.testing.assert_allclose(weights.sum(axis=3), 1.0, rtol=1e-6)
  split0 = np.exp(logits[..., :8]) / (np.exp(logits[..., :8]) + np.exp(logits[..., 8:]))
  np.testing.assert_allclose(weights[..., 0, :], split0, rtol=1e-5)
  # Cardinality 2: logits ordered (group, radix, C/2); weights come out (radix, C).
  grouped = np.asarray(resnest.radix_softmax(logits, radix=2, cardinality=2))
  l = np.asarray(logits).reshape(2, 2, 2, 4)  # (N, group, radix, c)
  expected = np.exp(l) / np.exp(l).sum(axis=2, keepdims=True)
  np.testing.assert_allclose(grouped.reshape(2, 2, 8),
                             expected.transpose(0, 2, 1, 3).reshape(2, 2, 8), rtol=1e-5)
  gate = resnest.radix_softmax(logits, radix=1, cardinality=1)
  np.testing.assert_allclose(np.asarray(gate)[:, :, :, 0], jax.nn.sigmoid(logits), rtol=1e-6)


def test_split_attention_shapes_and_widths():
  conv = layers.conv_def('torch', jnp.float32)
  norm = layers.norm_def('torch', jnp.float32, False)
  module = resnest.SplitAttention(64, radix=2, cardinality=1, conv=conv, norm=norm)
  x = jax.ShapeDtypeStruct((1, 8, 8, 64), jnp.float32)
  y, variables = jax.eval_shape(lambda x: module.init_with_output(jax.random.key(0), x), x)
  assert y.shape == (1, 8, 8, 64)
  p = variables['params']
  assert p['conv']['kernel'].shape == (3, 3, 32, 128)  # radix groups: each split sees 32
  assert p['fc1']['kernel'].shape == (1, 1, 64, 32)  # max(64 * 2 / 4, 32)
  assert p['fc2']['kernel'].shape == (1, 1, 32, 128) and p['fc2']['bias'].shape == (128,)


# --- TResNet: SpaceToDepth and the anti-aliasing blur.

def test_space_to_depth_orders_block_row_block_column_channel():
  x = jnp.arange(1 * 8 * 8 * 3, dtype=jnp.float32).reshape(1, 8, 8, 3)
  y = np.asarray(tresnet.space_to_depth(x))
  assert y.shape == (1, 2, 2, 48)
  for bh in range(4):
    for bw in range(4):
      np.testing.assert_array_equal(y[0, 1, 0, (bh * 4 + bw) * 3:(bh * 4 + bw + 1) * 3],
                                    x[0, 4 + bh, bw])
  with pytest.raises(UserError, match='divisible by 4'):
    tresnet.space_to_depth(jnp.zeros((1, 30, 30, 3)))


def test_blur_pool_is_the_normalised_binomial_with_reflect_padding():
  np.testing.assert_allclose(tresnet.blur_pool(jnp.full((1, 6, 6, 2), 3.0)), 3.0, rtol=1e-6)
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  taps = np.array([1.0, 2.0, 1.0]) / 4.0
  expected = np.zeros((2, 3, 3, 3))
  for i in range(3):
    for j in range(3):
      window = padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
      expected[:, i, j] = np.einsum('nhwc,h,w->nc', window, taps, taps)
  np.testing.assert_allclose(tresnet.blur_pool(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-6)


def test_tresnet_forms_differ_in_widths_and_se():
  assert tresnet.stage_plan('imagenet', 1.0) == [
      (64, 64, False, 64), (128, 128, False, 64), (256, 1024, True, 128), (512, 2048, True, 0)]
  assert tresnet.stage_plan('cifar', 1.0) == [
      (64, 64, False, 16), (128, 128, False, 32), (64, 256, True, 8), (128, 512, True, 0)]


# --- Errors.

def test_bad_stem_and_upsample_are_user_errors():
  with pytest.raises(UserError, match=r"^model\.stem: unknown value 'tiny'; choose one of: "
                     r'cifar, imagenet$'):
    create_model('resnest50d', stem='tiny')
  x = jax.ShapeDtypeStruct(CIFAR, jnp.float32)
  with pytest.raises(UserError, match=r'^model\.upsample: '):
    jax.eval_shape(lambda x: create_model('tresnet_m', upsample=0).init(
        jax.random.key(0), x, train=False), x)
  with pytest.raises(UserError, match=r'^model\.radix'):
    jax.eval_shape(lambda x: create_model('resnest50d', radix=0).init(
        jax.random.key(0), x, train=False), x)


def test_compile_benchmark_covers_the_families_by_module():
  from benchmarks import compile_time  # pylint: disable=g-import-not-at-top
  assert compile_time.expand_models('resnest,tresnet, ibn') == [
      'resnest50d', 'tresnet_m', 'resnet101b_ibn_a', 'resnet35b_ibn_a', 'resnet50_ibn_a',
      'resnet50b_ibn_a']
  assert compile_time.model_target('tresnet_m') == 'configs/tresnet_m.py'

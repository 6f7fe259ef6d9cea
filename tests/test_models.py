"""Tests for the model registry, shared layers and the model families (counts: SPEC §1-§6)."""

import re
import subprocess
import sys

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import processes
from jaxcls.errors import UserError
from jaxcls.models import count_params, create_model, layers, list_models, weight_decay_mask
from jaxcls.models import __main__ as models_cli
from jaxcls.models import dpn, macs, mobilenet_v2, registry, wrn
from tests.conftest import REPO

MODELS = [
    'airbench94', 'densenet100k12', 'densenet100k16', 'densenet160k12', 'densenet190k40',
    'densenet250k12', 'densenet250k24', 'dpn', 'efficientnet_b0', 'efficientnet_b1',
    'efficientnet_b2', 'efficientnet_b3', 'efficientnet_b4', 'efficientnet_b5', 'efficientnet_b6',
    'efficientnet_b7', 'inception_v3', 'inception_v4', 'mobilenetv2', 'mobilenetv3_large',
    'mobilenetv3_small', 'nat_m1', 'nat_m2', 'pyramidnet110_a270', 'pyramidnet110_a48',
    'pyramidnet110_a84', 'pyramidnet164_a270_bn', 'pyramidnet200_a240_bn', 'pyramidnet236_a220_bn',
    'pyramidnet272_a200_bn', 'resnest50d', 'resnet101b', 'resnet101b_ibn_a', 'resnet152b',
    'resnet170b', 'resnet18', 'resnet34', 'resnet35b', 'resnet35b_ibn_a', 'resnet50_ibn_a',
    'resnet50b', 'resnet50b_ibn_a', 'resnext101_c32', 'resnext152_c32', 'resnext50_c32',
    'senet101', 'senet152', 'senet35', 'senet50', 'shake_shake26_2x64d', 'shake_shake26_2x96d',
    'tresnet_m', 'wideresnet18', 'wrn28_10', 'xception',
]


def _abstract_init(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


# --- Registry.

def test_list_models_is_sorted_and_complete():
  assert list_models() == MODELS


def test_unknown_model_names_the_field_and_the_choices():
  with pytest.raises(UserError, match=r"^model\.name: unknown model 'resnet19'; choose one of: "
                     r".*resnet18, resnet34"):
    create_model('resnet19')


def test_unknown_override_lists_the_fields():
  with pytest.raises(UserError, match=r"^model\.foo: model 'resnet18' has no field 'foo'; its "
                     r"fields are: .*stage_sizes"):
    create_model('resnet18', foo=3)


@pytest.mark.parametrize('field,value,allowed', [
    ('activation', 'gelu', 'relu, mish, swish'),
    ('drop_path_mode', 'row', 'batch, sample'),
    ('convention', 'jax', 'keras, torch'),
    ('dtype', 'float64', 'float32, bfloat16, float16'),
])
def test_bad_choice_value_names_the_field_and_the_choices(field, value, allowed):
  with pytest.raises(UserError, match=rf"^model\.{field}: .*{value!r}.*{allowed}$"):
    create_model('resnet18', **{field: value})


def test_bad_survival_prob_is_a_user_error():
  with pytest.raises(UserError, match=r'^model\.survival_prob: '):
    create_model('resnet50b', survival_prob=0.0)


def _zeroed(value, number=0):
  """`value` with its first number set to `number` (inside nested tuples too)."""
  if isinstance(value, tuple):
    return (_zeroed(value[0], number),) + value[1:]
  return number


@pytest.mark.parametrize('name', MODELS)
def test_every_size_field_of_every_family_refuses_zero_and_floats_refuse_nan(name):
  """The registry's generic checks, for each registered model (new families included)."""
  preset = create_model(name)
  for field in registry.model_fields(preset):
    value = getattr(preset, field)
    if field == 'num_classes':
      continue
    if registry.SIZE_FIELD.search(field) and value is not None:
      low = getattr(type(preset), 'FIELD_MINIMA', {}).get(field, 1)  # Inception's may be 0
      with pytest.raises(UserError, match=rf'^model\.{field}: must be an integer from {low} to '):
        create_model(name, **{field: _zeroed(value, low - 1)})
      fractional = (2.5,) + value[1:] if isinstance(value, tuple) else 2.5
      with pytest.raises(UserError, match=rf'^model\.{field}: {name!r} needs integers here'):
        create_model(name, **{field: fractional})
    elif isinstance(value, float):
      with pytest.raises(UserError, match=rf'^model\.{field}: must be '):
        create_model(name, **{field: float('nan')})


@pytest.mark.parametrize('name,fields,message', [
    ('resnet18', {'base_width': 0, 'stem_width': 0}, r"^model\.base_width: must be an integer "
                                                     r"from 1 to 2147483647, got 0$"),
    ('resnet18', {'se_reduction': -1}, r'^model\.se_reduction: must be an integer from 0 '),
    ('wrn28_10', {'dropout_rate': 1.0}, r'^model\.dropout_rate: must be in \[0, 1\), got 1.0$'),
    ('mobilenetv2', {'width_mult': 0.0}, r'^model\.width_mult: must be a finite number > 0'),
    ('densenet100k12', {'reduction': float('inf')}, r'^model\.reduction: must be a finite '),
    ('dpn', {'growth_rates': (16, 0, 64)}, r'^model\.growth_rates: must be an integer from 1 '
                                           r'to 2147483647 in every entry, got \(16, 0, 64\)$'),
])
def test_numbers_out_of_range_name_the_field(name, fields, message):
  with pytest.raises(UserError, match=message):
    create_model(name, **fields)


@pytest.mark.parametrize('name,fields,message', [
    ('densenet100k12', {'depth': 101}, r'^model\.depth: DenseNet-BC needs depth = 6n \+ 4'),
    ('shake_shake26_2x96d', {'depth': 27}, r'^model\.depth: Shake-Shake needs depth = 6n \+ 2'),
    ('resnet18', {'base_width': 8, 'stem_width': 64}, r'^model\.stem_width: 64 exceeds'),
    ('mobilenetv2', {'blocks': ((1, 16, 1, 0),)}, r'^model\.blocks: every row is \(t, c, n, s\) '
                                                  r'with stride s = 1 or 2'),
    ('mobilenetv2', {'width_mult': 0.01}, r"^model: 'mobilenetv2' cannot be built with "
                                          r'model\.width_mult=0\.01 \(ZeroDivisionError: '),
])
def test_check_buildable_runs_the_family_checks_without_computing(name, fields, message):
  with pytest.raises(UserError, match=message):
    registry.check_buildable(name, **fields)


def test_check_buildable_traces_only_a_modified_preset(monkeypatch):
  """The presets are built by the tests; a deep DenseNet's trace takes seconds."""
  monkeypatch.setattr(macs, 'abstract_variables', lambda *a: 1 / 0)
  registry.check_buildable('resnet18')
  registry.check_buildable('resnet18', base_width=16, stage_sizes=[2, 2, 2, 2], dtype='bfloat16')
  with pytest.raises(UserError, match=r"^model: 'resnet18' cannot be built with "
                                      r'model\.base_width=8 \(ZeroDivisionError'):
    registry.check_buildable('resnet18', base_width=8)


def test_overrides_apply_none_is_ignored_lists_become_tuples():
  model = create_model('resnet18', num_classes=100, activation=None, stage_sizes=[1, 1, 1, 1],
                       base_width=8, dtype='bfloat16')
  assert model.num_classes == 100
  assert model.activation == 'relu'
  assert model.stage_sizes == (1, 1, 1, 1)
  assert model.dtype == jnp.bfloat16
  nested = create_model('mobilenetv2', blocks=[[1, 8, 1, 1], [6, 8, 2, 2]])
  assert nested.blocks == ((1, 8, 1, 1), (6, 8, 2, 2))
  # The preset itself is not mutated by an earlier override.
  assert create_model('resnet18').stage_sizes == (2, 2, 2, 2)


# --- Counts (every model's are in test_macs.py).

def test_count_params_on_a_small_preset():
  # Stem 9*1*4; stage 1: BN 2*4, two 3x3 convs 2*9*4*4 and BN 2*4; head BN 2*4, Dense 4*10+10.
  model = create_model('resnet18', stage_sizes=(1,), base_width=4)
  assert count_params(model, (1, 8, 8, 1)) == (36 + 8 + 288 + 8 + 8 + 50, 3 * 8)


def test_counts_do_not_depend_on_activation_or_convention():
  assert count_params(create_model('resnet35b', activation='mish')) == (866_010, 7_712)
  assert count_params(create_model('resnet35b', convention='torch')) == (866_010, 7_712)


# --- Shared layers.

def test_activations_by_name():
  x = jnp.linspace(-4.0, 4.0, 17)
  xn = np.asarray(x, np.float64)
  np.testing.assert_allclose(layers.activation('mish')(x), xn * np.tanh(np.log1p(np.exp(xn))),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(layers.activation('swish')(x), xn / (1.0 + np.exp(-xn)),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(layers.activation('relu')(x), np.maximum(xn, 0.0))
  assert float(layers.activation('mish')(jnp.float32(1.0))) == pytest.approx(0.8650984)


def test_pad_shortcut_pools_then_pads_channels_symmetrically():
  x = jnp.arange(2 * 4 * 4 * 2, dtype=jnp.float32).reshape(2, 4, 4, 2)
  y = layers.pad_shortcut(x, 6, strides=2)
  assert y.shape == (2, 2, 2, 6)
  pooled = x.reshape(2, 2, 2, 2, 2, 2).mean(axis=(2, 4))
  np.testing.assert_allclose(y[..., 2:4], pooled)
  assert not np.any(y[..., :2]) and not np.any(y[..., 4:])
  np.testing.assert_array_equal(layers.pad_shortcut(x, 2, strides=1), x)


def test_strided_shortcut_on_odd_size_matches_same_conv_and_averages_real_pixels():
  x = jnp.ones((1, 7, 7, 1))
  y = layers.pad_shortcut(x, 1, strides=2)
  conv = nn.Conv(1, (3, 3), (2, 2), padding='SAME')
  conv_out = jax.eval_shape(lambda: conv.init_with_output(jax.random.key(0), x)[0])
  assert y.shape == conv_out.shape == (1, 4, 4, 1)
  np.testing.assert_allclose(y, 1.0)  # the ragged edge is not diluted by padding


def test_make_divisible_for_se_hidden_widths():
  assert [layers.make_divisible(c / 16, 8) for c in (64, 128, 256, 512)] == [8, 8, 16, 32]
  assert layers.make_divisible(75, 8) == 72
  assert layers.make_divisible(76, 8) == 80  # a tie rounds up
  assert layers.make_divisible(11, 8) == 16  # never more than 10% below the value


def test_survival_probs_linear_from_one_to_final():
  probs = layers.survival_probs(16, 0.5)
  assert len(probs) == 16
  assert probs[-1] == pytest.approx(0.5)
  assert probs[0] == pytest.approx(1 - 0.5 / 16)
  np.testing.assert_allclose(np.diff(probs), -0.5 / 16)


def _sd(mode, p, shortcut, branch, train, seed=0):
  module = layers.StochasticDepth(p, mode)
  return module.apply({}, shortcut, branch, train, rngs={'drop_path': jax.random.key(seed)})


def test_stochastic_depth_batch_mode_drops_the_whole_batch_together():
  shortcut = jnp.zeros((8, 2, 2, 3))
  branch = jnp.ones((8, 2, 2, 3))
  outcomes = set()
  for seed in range(16):
    out = np.asarray(_sd('batch', 0.5, shortcut, branch, True, seed))
    assert np.all(out == out.flat[0])  # one decision for every sample
    assert out.flat[0] in (0.0, 1.0)  # kept branches are not rescaled
    outcomes.add(float(out.flat[0]))
  assert outcomes == {0.0, 1.0}
  np.testing.assert_allclose(_sd('batch', 0.7, shortcut + 2, branch, False), 2.7)


def test_stochastic_depth_sample_mode_is_per_sample_and_rescaled():
  shortcut = jnp.zeros((64, 2, 2, 3))
  branch = jnp.ones((64, 2, 2, 3))
  out = np.asarray(_sd('sample', 0.5, shortcut, branch, True))
  per_sample = out.reshape(64, -1)
  assert np.all(per_sample == per_sample[:, :1])  # one decision per sample
  assert set(np.unique(per_sample)) == {0.0, 2.0}  # kept branches are scaled by 1/p
  np.testing.assert_array_equal(_sd('sample', 0.5, shortcut + 2, branch, False), 3.0)


def test_stochastic_depth_needs_no_rng_when_off_or_in_eval():
  x = jnp.ones((2, 3))
  np.testing.assert_array_equal(layers.StochasticDepth(1.0).apply({}, x, x, True), 2.0)
  np.testing.assert_array_equal(layers.StochasticDepth(0.5).apply({}, x, x, False), 1.5)


def test_resnet_assigns_survival_probs_over_the_global_unit_index():
  model = create_model('resnet35b', survival_prob=0.5, drop_path_mode='sample')
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, layers.StochasticDepth) and context.method_name == '__call__':
      seen.append((context.module.survival_prob, context.module.mode))
    return next_fun(*args, **kwargs)

  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False), x)
  assert [m for _, m in seen] == ['sample'] * 11
  np.testing.assert_allclose([p for p, _ in seen], layers.survival_probs(11, 0.5))


def test_weight_decay_mask_picks_conv_kernels():
  model = create_model('resnet18', stage_sizes=(1, 1, 1, 1), base_width=4)
  params = _abstract_init(model, (1, 8, 8, 1))['params']
  conv = weight_decay_mask(params, 'conv_kernels')
  assert conv['stem']['kernel'] and conv['stage1_unit1']['PreActConv_0']['Conv_0']['kernel']
  assert not conv['stage1_unit1']['PreActConv_0']['BatchNorm_0']['scale']
  assert not conv['head']['kernel'] and not conv['head']['bias']
  kernels = weight_decay_mask(params, 'kernels')
  assert kernels['head']['kernel'] and not kernels['head']['bias']
  assert all(jax.tree_util.tree_leaves(weight_decay_mask(params, 'all')))
  with pytest.raises(UserError, match=r'^optim\.weight_decay_on: '):
    weight_decay_mask(params, 'convs')


def test_conventions_set_bn_and_init():
  assert layers.norm_def('keras', jnp.float32, True).keywords['momentum'] == 0.99
  assert layers.norm_def('keras', jnp.float32, True).keywords['epsilon'] == 1e-3
  assert layers.norm_def('torch', jnp.float32, True).keywords['momentum'] == 0.9
  assert layers.norm_def('torch', jnp.float32, True).keywords['epsilon'] == 1e-5
  shape = (3, 3, 64, 128)
  torch_init = layers.conv_def('torch', jnp.float32).keywords['kernel_init']
  keras_init = layers.conv_def('keras', jnp.float32).keywords['kernel_init']
  torch_w = np.asarray(torch_init(jax.random.key(0), shape))
  keras_w = np.asarray(keras_init(jax.random.key(0), shape))
  # PyTorch seed B: normal(0, sqrt(2 / (k*k*out))); Keras: U(+-sqrt(6 / (fan_in + fan_out))).
  assert torch_w.std() == pytest.approx(np.sqrt(2 / (9 * 128)), rel=0.02)
  limit = np.sqrt(6 / (9 * 64 + 9 * 128))
  assert np.abs(keras_w).max() <= limit and np.abs(keras_w).max() > 0.99 * limit


# --- DenseNet.

def test_densenet_depth_must_be_6n_plus_4():
  with pytest.raises(UserError, match=r'^model\.depth: DenseNet-BC needs depth = 6n \+ 4'):
    count_params(create_model('densenet100k12', depth=101))


@pytest.mark.parametrize('convention,new_first', [('keras', True), ('torch', False)])
def test_densenet_concatenation_order_follows_the_convention(convention, new_first):
  model = create_model('densenet100k12', depth=10, growth_rate=2, convention=convention)
  x = jax.ShapeDtypeStruct((1, 4, 4, 3), jnp.float32)
  variables = _abstract_init(model, x.shape)
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
  concats = [[v.aval.shape[-1] for v in eqn.invars]
             for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == 'concatenate']
  # The first layer adds k=2 channels to the stem's 2k=4; Keras puts them first.
  assert concats[0] == ([2, 4] if new_first else [4, 2])


# --- MobileNetV2.

def test_mobilenet_residual_only_when_width_and_resolution_are_kept():
  norm = layers.norm_def('keras', jnp.float32, False)
  conv = layers.conv_def('keras', jnp.float32)

  @jax.jit
  def outputs(x):
    result = []
    for features, strides in ((8, 1), (16, 1), (8, 2)):
      block = mobilenet_v2.InvertedResidual(6, features, strides, conv, norm)
      variables = block.init(jax.random.key(0, impl='rbg'), x)
      # Zero the projection BN: the output is then exactly the residual path (x or nothing).
      bn = variables['params']['project_norm']
      variables['params']['project_norm'] = jax.tree_util.tree_map(jnp.zeros_like, bn)
      result.append(block.apply(variables, x))
    return result

  x = jax.random.normal(jax.random.key(0), (1, 4, 4, 8))
  same, wider, strided = outputs(x)
  np.testing.assert_array_equal(same, x)
  np.testing.assert_array_equal(wider, np.zeros((1, 4, 4, 16)))
  np.testing.assert_array_equal(strided, np.zeros((1, 2, 2, 8)))


def test_mobilenet_l2_mask_covers_block_convs_only():
  params = _abstract_init(create_model('mobilenetv2'), (1, 32, 32, 3))['params']
  mask = weight_decay_mask(params, 'conv_kernels')
  assert not mask['stem_no_l2']['kernel'] and not mask['head_conv_no_l2']['kernel']
  assert not mask['head']['kernel']
  assert mask['stage1_unit1']['depthwise']['kernel'] and mask['stage1_unit1']['project']['kernel']
  assert mask['stage2_unit1']['expand']['kernel']
  assert not mask['stage2_unit1']['expand_norm']['scale']
  # 50 block convs: 17 depthwise, 17 project and 16 expand (the first block has none).
  assert sum(jax.tree_util.tree_leaves(mask)) == 50


def test_mobilenet_upsample_must_be_a_positive_integer():
  with pytest.raises(UserError, match=r'^model\.upsample: '):
    count_params(create_model('mobilenetv2', upsample=0))


# --- Seed B's WRN and DPN: which input each path takes.

def _parts():
  return dict(conv=layers.conv_def('torch', jnp.float32),
              norm=layers.norm_def('torch', jnp.float32, False), act=jax.nn.relu)


def _run_compiled(fn, *args):
  """`fn(*args)` compiled once at XLA optimisation level 0, which halves the CPU compile time
  of these one-off programs (eager op-by-op dispatch is slower still)."""
  return jax.jit(fn).lower(*args).compile({'xla_backend_optimization_level': 0})(*args)


def _apply_with_dead_input_activation(module, x, *args):
  """`module` in eval mode with its first BN at scale 0 / bias -1, so ReLU(BN(x)) = 0."""

  def run(x):
    variables = module.init(jax.random.key(0, impl='rbg'), x, *args)
    bn = variables['params']['BatchNorm_0']
    variables['params']['BatchNorm_0'] = {'scale': jnp.zeros_like(bn['scale']),
                                          'bias': -jnp.ones_like(bn['bias'])}
    return module.apply(variables, x, *args)

  return np.asarray(_run_compiled(run, x))


def test_wrn_projection_takes_the_activated_input_identity_the_raw_one():
  x = jax.random.normal(jax.random.key(1), (2, 6, 6, 4)) + 2.0
  # Width change: the 3x3 path and the 1x1 projection both see ReLU(BN(x)) = 0, so out = 0.
  wider = wrn.WideBasic(8, 2, **_parts())
  np.testing.assert_array_equal(_apply_with_dead_input_activation(wider, x, False), 0.0)
  # Same width: the branch sees zeros and the RAW x is added back.
  same = wrn.WideBasic(4, 1, **_parts())
  np.testing.assert_allclose(_apply_with_dead_input_activation(same, x, False), x, atol=1e-6)


def test_dpn_transition_dense_path_takes_the_raw_input():
  x = jax.random.normal(jax.random.key(1), (2, 6, 6, 4)) + 2.0
  out = _apply_with_dead_input_activation(dpn.Transition(8, 3, 2, **_parts()), x)
  assert out.shape == (2, 3, 3, 8 + 2 * 3)
  np.testing.assert_array_equal(out[..., :8], 0.0)  # the basic block saw ReLU(BN(x)) = 0
  assert np.all(np.abs(out[..., 8:]).max(axis=(1, 2)) > 0)  # conv 3x3 of the raw x


def test_dpn_block_adds_on_the_first_f_channels_and_appends_g():
  f, g = 6, 2
  x = jax.random.normal(jax.random.key(1), (2, 4, 4, f + 3 * g))
  block = dpn.DualPathBlock(f, g, **_parts())

  def run(x):
    variables = block.init(jax.random.key(0, impl='rbg'), x)
    out = block.apply(variables, x)
    # With the last conv zeroed, y = 0: the residual part is x[:f] and the new features are 0.
    conv = variables['params']['PreActConv_1']['Conv_0']
    variables['params']['PreActConv_1']['Conv_0'] = {'kernel': jnp.zeros_like(conv['kernel'])}
    return out, block.apply(variables, x)

  out, out_without_y = map(np.asarray, _run_compiled(run, x))
  assert out.shape == (2, 4, 4, f + 4 * g)
  np.testing.assert_array_equal(out[..., f:f + 3 * g], x[..., f:])  # old dense features kept
  assert not np.allclose(out[..., :f], x[..., :f])
  np.testing.assert_array_equal(out_without_y[..., :f + 3 * g], x)
  np.testing.assert_array_equal(out_without_y[..., f + 3 * g:], 0.0)


# --- Compiled forward and backward of tiny presets.

def _init_and_train_step(model, x, rngs):
  """One compiled program: init, then the gradient of a loss through a train-mode forward."""

  def run(x):
    # The 'rbg' key compiles several times faster than threefry on CPU.
    variables = model.init(jax.random.key(0, impl='rbg'), x, train=False)

    def loss_fn(params):
      logits, updates = model.apply({**variables, 'params': params}, x, train=True,
                                    mutable=['batch_stats'], rngs=rngs)
      return jnp.mean(logits**2), (logits, updates)

    (_, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        variables['params'])
    return variables, logits, updates, grads

  return _run_compiled(run, x)


# One tiny preset per family; two stages at most keep the CPU compile short. The ResNetV2 family
# runs twice: basic units with seed A's batch-mode stochastic depth, and bottlenecks with
# everything ResNeXt and SE-Net add (grouped 3x3, SE) and per-sample drop path.
TINY = [
    dict(name='resnet18', stage_sizes=(1, 1), base_width=4, survival_prob=0.5),
    dict(name='senet50', stage_sizes=(1, 1), base_width=4, cardinality=2, survival_prob=0.5,
         drop_path_mode='sample'),
    dict(name='densenet100k12', depth=10, growth_rate=4),
    dict(name='mobilenetv2', upsample=1, blocks=((1, 8, 1, 1), (6, 8, 2, 2))),
    dict(name='wrn28_10', depth=10, widen=1, dropout_rate=0.3),
    dict(name='dpn', stage_sizes=(2, 1), filters=(8, 16), growth_rates=(2, 4), stem_width=4),
    dict(name='shake_shake26_2x64d', depth=8, base_width=4),
    dict(name='pyramidnet164_a270_bn', depth=11, alpha=6, stem_width=4, shakedrop=True),
]
TINY_IDS = [t['name'] for t in TINY]


@pytest.mark.parametrize('overrides', TINY, ids=TINY_IDS)
def test_tiny_forward_backward(overrides):
  model = create_model(num_classes=10, **overrides)
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 1))
  rngs = {name: jax.random.key(i + 2, impl='rbg')
          for i, name in enumerate(('drop_path', 'shake', 'dropout', 'shakedrop'))}
  variables, logits, updates, grads = _init_and_train_step(model, x, rngs)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  stem = next(v for k, v in grads.items() if k.startswith('stem'))  # the first layer
  assert np.any(np.asarray(stem['kernel']) != 0)
  # Every running variance moves (a mean fed by train-mode BN outputs can stay exactly zero). Only
  # slightly where a BN reads another BN's output, as PyramidNet's first unit does (variance ~1).
  old = traverse_util.flatten_dict(variables['batch_stats'])
  new = traverse_util.flatten_dict(updates['batch_stats'])
  variances = [k for k in old if k[-1] == 'var']
  assert variances and all(not np.array_equal(old[k], new[k]) for k in variances)


def test_odd_input_size_runs_through_four_stages():
  model = create_model('resnet18', stage_sizes=(1, 1, 1, 1), base_width=4)
  x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], x)
  assert out.shape == (2, 10)


@pytest.mark.parametrize('overrides', TINY, ids=TINY_IDS)
def test_bfloat16_compute_float32_storage(overrides):
  model = create_model(dtype='bfloat16', **overrides)
  x = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)
  variables = _abstract_init(model, x.shape)
  dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)}
  assert dtypes == {jnp.dtype(jnp.float32)}
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
  conv_dtypes = set()

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ('conv_general_dilated', 'dot_general'):
        conv_dtypes.add((eqn.primitive.name, eqn.outvars[0].aval.dtype))
      for value in eqn.params.values():
        inner = getattr(value, 'jaxpr', value)
        if hasattr(inner, 'eqns'):
          walk(inner)

  walk(jaxpr.jaxpr)
  bf16 = jnp.dtype(jnp.bfloat16)
  assert conv_dtypes == {('conv_general_dilated', bf16), ('dot_general', bf16)}
  assert jaxpr.out_avals[0].dtype == jnp.float32


# --- python -m jaxcls.models.

def test_models_cli_counts_the_models_a_word_picks(capsys):
  assert models_cli.main(['resnet34', 'resnet18']) == 0
  assert capsys.readouterr().out.splitlines() == [
      '| model | family | params | batch_stats | MACs (M) |', '|---|---|--:|--:|--:|',
      '| `resnet18` | ResNetV2 (resnet_v2) | 690,266 | 1,952 | 34.65 |',
      '| `resnet34` | ResNetV2 (resnet_v2) | 1,323,418 | 3,808 | 72.40 |',  # seed A: 1,327,226
      '| `wideresnet18` | ResNetV2 (resnet_v2) | 11,182,410 | 23,168 | 609.96 |']  # 'resnet18'


def test_models_cli_counts_on_another_input():
  """Seed B's Shake-Shake-26 2x96d on Fashion-MNIST: 26,330,026 trainable params."""
  table = models_cli.zoo.registry_table(['shake_shake26_2x96d'], (1, 28, 28, 1))
  assert '| 26,330,026 |' in table


def test_models_cli_lists_every_model_without_counting(capsys, monkeypatch):
  monkeypatch.setattr(models_cli.zoo, 'count_params', lambda *a: 1 / 0)
  assert models_cli.main(['--no-counts']) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[:2] == ['| model | family |', '|---|---|']
  assert [line.split('`')[1] for line in lines[2:]] == MODELS
  assert '| `wrn28_10` | WideResNet (wrn) |' in lines


def test_models_cli_counts_the_imagenet_form_with_stem(capsys):
  """EfficientNet-B0 as published (Tan & Le 2019, Table 2: 5.3M params, 0.39B FLOPs)."""
  assert models_cli.main(['efficientnet_b0', '--stem', 'imagenet', '--classes', '1000',
                          '--input', '224x224x3']) == 0
  assert capsys.readouterr().out.splitlines()[2] == (
      '| `efficientnet_b0` | EfficientNet (efficientnet) | 5,288,548 | 42,016 | 385.81 |')


def test_models_cli_piped_into_head_stops_quietly():
  # The shell's pipe, in a process group that dies with the test (processes.run).
  done = processes.run(['sh', '-c', f'{sys.executable} -m jaxcls.models --no-counts | head -1'],
                       timeout=120, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
  assert done.stdout == '| model | family |\n'
  assert done.stderr == ''  # no BrokenPipeError traceback


def test_models_cli_unknown_word_is_a_user_error():
  with pytest.raises(UserError, match=r"^no registered model contains 'vgg'; the models are: "
                                      + re.escape(', '.join(MODELS)) + '$'):
    models_cli.main(['vgg'])

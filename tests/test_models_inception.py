"""Inception-v3, Inception-v4 and Xception (SPEC §11): the ImageNet forms against the reference
implementations' counts, the CIFAR forms' counts, MACs (by hand from the grids their docstrings
state) and grids, the details that are easy to get wrong, and one compiled train step each."""

import math

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcls.errors import UserError
from jaxcls.models import count_macs, count_params, create_model, inception_v3, inception_v4
from jaxcls.models import layers, xception
from jaxcls.models.macs import abstract_variables
from tests.conftest import eval_forward_macs
from tests.test_models import _init_and_train_step, _run_compiled

IMAGENET = (1, 299, 299, 3)
CIFAR = (1, 32, 32, 3)
NAMES = ('inception_v3', 'inception_v4', 'xception')

# (params with 1000 classes, batch_stats, params with 10 classes): torchvision's inception_v3
# without the aux head, timm's inception_v4 and legacy_xception.
REFERENCE = {
    'inception_v3': (23_834_568, 34_432, 21_806_058),
    'inception_v4': (42_679_816, 63_168, 41_158_186),
    'xception': (22_855_952, 54_528, 20_827_442),
}
# Conv and Dense MACs of the ImageNet forms at 299 px (ours; timm's model cards round them to
# 5.7, 12.3 and 8.4 GMACs).
IMAGENET_MACS = {'inception_v3': 5_713_216_096, 'inception_v4': 12_253_974_624,
                 'xception': 8_357_403_496}


@pytest.mark.parametrize('name', NAMES)
def test_imagenet_form_has_the_reference_counts(name):
  params, batch_stats, params_10 = REFERENCE[name]
  model = create_model(name, num_classes=1000, stem='imagenet')
  assert count_params(model, IMAGENET) == (params, batch_stats)
  assert count_macs(model, IMAGENET) == IMAGENET_MACS[name]
  assert count_params(create_model(name, stem='imagenet'), IMAGENET) == (params_10, batch_stats)


# --- The CIFAR forms: the same parameters, on the grids the module docstrings give.

def _grid_v3(path: tuple[str, ...]) -> int:
  """Output side of a conv of the CIFAR Inception-v3 on 32x32: stem and Mixed_5 32, Mixed_6 15,
  Mixed_7 7; the stride-2 convs of the reductions give the next grid."""
  block, conv = path[0], path[1] if len(path) > 1 else ''
  if block == 'Mixed_6a':
    return 15 if conv in ('branch3x3', 'branch3x3dbl_3') else 32
  if block == 'Mixed_7a':
    return 7 if conv in ('branch3x3_2', 'branch7x7x3_4') else 15
  if block.startswith('Mixed_6'):
    return 15
  if block.startswith('Mixed_7'):
    return 7
  return 1 if block == 'fc' else 32


def _grid_v4(path: tuple[str, ...]) -> int:
  """The CIFAR Inception-v4 on 32x32: stem and Inception-A 32, -B 15, -C 7."""
  block, conv = path[0], path[1] if len(path) > 1 else ''
  if block == 'reduction_a':
    return 15 if conv in ('branch0', 'branch1_2') else 32
  if block == 'reduction_b':
    return 7 if conv in ('branch0_1', 'branch1_3') else 15
  if block.startswith('inception_b'):
    return 15
  if block.startswith('inception_c'):
    return 7
  return 1 if block == 'last_linear' else 32


def _grid_xception(path: tuple[str, ...]) -> int:
  """The CIFAR Xception on 32x32: stem and block 1 at 32, blocks 2 and 3 pool to 16 and 8
  (their separable convs run before the pool, their shortcuts after), the middle flow at 8,
  the exit block pools to 4."""
  block, conv = path[0], path[1] if len(path) > 1 else ''
  before_pool = {'block2': 32, 'block3': 16, 'block12': 8}
  after_pool = {'block2': 16, 'block3': 8, 'block12': 4}
  if block in before_pool:
    return after_pool[block] if conv == 'skip' else before_pool[block]
  if block in ('conv3', 'conv4'):
    return 4
  return 1 if block == 'fc' else 32 if block in ('conv1', 'conv2', 'block1') else 8


GRIDS = {'inception_v3': _grid_v3, 'inception_v4': _grid_v4, 'xception': _grid_xception}


def _macs_by_hand(params, grid) -> int:
  """Sum over kernels of (output pixels) x (kernel size): conv kernels are (kh, kw, in/groups,
  out), Dense kernels (in, out); the grid of each comes from its module path."""
  total = 0
  for path, leaf in traverse_util.flatten_dict(params).items():
    if path[-1] == 'kernel':
      total += grid(path) ** 2 * math.prod(leaf.shape)
  return total


@pytest.mark.parametrize('name', NAMES)
def test_cifar_form_counts_and_macs_by_hand(name):
  model = create_model(name)
  params, batch_stats, params_10 = REFERENCE[name]
  assert count_params(model, CIFAR) == (params_10, batch_stats)
  hand = _macs_by_hand(abstract_variables(model, CIFAR)['params'], GRIDS[name])
  assert count_macs(model, CIFAR) == hand
  assert hand == {'inception_v3': 3_631_154_176, 'inception_v4': 8_483_799_040,
                  'xception': 1_359_655_936}[name]


def _grids(model, size: int, names: set[str]) -> dict[str, int]:
  """Output side of the top-level modules called `names`, traced (nothing is computed)."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)

  def run(x):
    variables = model.init(jax.random.key(0), x, train=False)
    _, state = model.apply(variables, x, train=False, mutable=['intermediates'],
                           capture_intermediates=lambda m, _: len(m.scope.path) == 1 and
                           m.name in names)
    return state['intermediates']

  return {k: v['__call__'][0].shape[1] for k, v in jax.eval_shape(run, x).items()}


@pytest.mark.parametrize('name,grids', [
    ('inception_v3', {'Conv2d_2a_3x3': 147, 'Conv2d_4a_3x3': 71, 'Mixed_5d': 35, 'Mixed_6e': 17,
                      'Mixed_7c': 8}),
    ('inception_v4', {'stem_conv1': 149, 'mixed_3a': 73, 'mixed_4a': 71, 'mixed_5a': 35,
                      'inception_a4': 35, 'inception_b7': 17, 'inception_c3': 8}),
    ('xception', {'conv2': 147, 'block1': 74, 'block2': 37, 'block3': 19, 'block11': 19,
                  'block12': 10}),
])
def test_imagenet_form_grids(name, grids):
  model = create_model(name, num_classes=1000, stem='imagenet')
  assert _grids(model, 299, set(grids)) == grids


# --- Details that are easy to get wrong.

def test_pool_branches_count_the_padding_in_v3_but_not_in_v4():
  ones = jnp.ones((1, 4, 4, 1))
  # A corner window holds 4 real pixels of 9.
  assert float(inception_v3._avg_pool(ones)[0, 0, 0, 0]) == pytest.approx(4 / 9)
  assert float(inception_v4._avg_pool(ones)[0, 0, 0, 0]) == 1.0


def test_xception_shortcut_takes_the_input_before_the_first_relu():
  conv = layers.conv_def('torch', jnp.float32)
  norm = layers.norm_def('torch', jnp.float32, False)
  block = xception.Block(4, 2, 1, conv, norm)
  x = jax.random.normal(jax.random.key(1), (2, 5, 5, 4))  # half of it negative

  def run(x):
    variables = block.init(jax.random.key(0, impl='rbg'), x)
    # Zero the last BN: the residual branch is 0 and the block returns its shortcut.
    variables['params']['bn2'] = jax.tree.map(jnp.zeros_like, variables['params']['bn2'])
    return block.apply(variables, x)

  np.testing.assert_array_equal(np.asarray(_run_compiled(run, x)), x)


def test_xception_exit_block_grows_in_its_last_separable_conv():
  conv = layers.conv_def('torch', jnp.float32)
  norm = layers.norm_def('torch', jnp.float32, False)
  block = xception.Block(12, 2, 2, conv, norm, grow_first=False)
  params = jax.eval_shape(block.init, jax.random.key(0), jnp.ones((1, 8, 8, 6)))['params']
  assert params['sepconv1']['pointwise']['kernel'].shape == (1, 1, 6, 6)
  assert params['sepconv2']['pointwise']['kernel'].shape == (1, 1, 6, 12)
  assert params['skip']['kernel'].shape == (1, 1, 6, 12)


@pytest.mark.parametrize('field,value,message', [
    ('stem', 'tiny', r"^model\.stem: unknown value 'tiny'; choose one of: cifar, imagenet$"),
    ('width_mult', 0.0, r'^model\.width_mult: must be a finite number > 0'),
    ('dropout_rate', 1.0, r'^model\.dropout_rate: must be in \[0, 1\)'),
])
@pytest.mark.parametrize('name', NAMES)
def test_bad_fields_are_user_errors(name, field, value, message):
  with pytest.raises(UserError, match=message):
    count_params(create_model(name, **{field: value}))


def test_bad_depths_are_user_errors():
  with pytest.raises(UserError, match=r'^model\.stage_sizes: 3 module counts'):
    count_params(create_model('inception_v3', stage_sizes=(3, 4)))
  with pytest.raises(UserError, match=r'^model\.stage_sizes: must be an integer from 0 to '):
    count_params(create_model('inception_v4', stage_sizes=(4, -1, 3)))
  with pytest.raises(UserError, match=r'^model\.middle_blocks: must be an integer from 0 to '):
    count_params(create_model('xception', middle_blocks=-1))


# --- Tiny presets: MACs of the init trace, and one compiled train step.

# The stems, the first module kind and the grid reductions (the other modules' gradients are
# traced by tests/test_bf16.py); a bigger preset costs seconds of CPU compile per module.
TINY = {
    'inception_v3': dict(stage_sizes=(1, 0, 0), width_mult=0.125),
    'inception_v4': dict(stage_sizes=(1, 0, 0), width_mult=0.125),
    'xception': dict(middle_blocks=0, width_mult=0.0625),
}


@pytest.mark.parametrize('name', NAMES)
def test_init_trace_counts_the_eval_forward(name):
  model = create_model(name, **TINY[name])
  shape = (1, 16, 16, 3)
  assert count_macs(model, shape) == eval_forward_macs(model, shape) > 0


# Inception-v3 by default; the others (6 s of compile each) under --runslow, as CI runs.
@pytest.mark.parametrize('name', [n if n == 'inception_v3' else
                                  pytest.param(n, marks=pytest.mark.slow) for n in NAMES])
def test_tiny_train_step_is_finite_and_moves_the_statistics(name):
  model = create_model(name, **TINY[name])
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  variables, logits, updates, grads = _init_and_train_step(
      model, x, {'dropout': jax.random.key(2, impl='rbg')})
  assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  first = traverse_util.flatten_dict(next(iter(grads.values())))  # the stem's first conv
  kernel = next(v for k, v in first.items() if k[-1] == 'kernel')
  assert np.any(np.asarray(kernel) != 0)
  old = traverse_util.flatten_dict(variables['batch_stats'])
  new = traverse_util.flatten_dict(updates['batch_stats'])
  variances = [k for k in old if k[-1] == 'var']
  assert variances and all(not np.allclose(old[k], new[k]) for k in variances)

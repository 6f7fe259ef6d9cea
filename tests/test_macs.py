"""Tests for the conv/Dense multiply-accumulate counter (seed A's "FLOPs/2" column, SPEC §0)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcls.models import count_macs, count_params, create_model
from jaxcls.models.layers import make_divisible
from jaxcls.models.macs import jaxpr_macs

# name -> (MACs in millions as SPEC prints them, input shape).
CIFAR = (1, 32, 32, 3)
EXPECTED_MACS = {
    'resnet18': (34.65, CIFAR),
    'resnet34': (72.402, CIFAR),
    'resnet35b': (51.828, CIFAR),
    'resnet50b': (74.110, CIFAR),
    'resnet101b': (149.870, CIFAR),
    'resnet152b': (225.629, CIFAR),
    'resnet170b': (252.368, CIFAR),
    'wideresnet18': (609.964, CIFAR),
    'resnext50_c32': (77.96, CIFAR),
    'resnext101_c32': (154.28, CIFAR),
}


def _decimals(printed: float) -> int:
  text = repr(printed)
  return len(text.split('.')[1]) if '.' in text else 0


@pytest.mark.parametrize('name', sorted(EXPECTED_MACS))
def test_macs_match_spec(name):
  expected, shape = EXPECTED_MACS[name]
  macs = count_macs(create_model(name), shape) / 1e6
  assert macs == pytest.approx(expected, rel=1e-3)
  # Exact to the printed digits, not just within tolerance.
  assert round(macs, _decimals(expected)) == pytest.approx(expected, abs=1e-9)


class _Toy(nn.Module):
  groups: int = 1
  norm: bool = False

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(8, (3, 3), padding='SAME', feature_group_count=self.groups)(x)
    if self.norm:
      x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    return nn.Dense(4)(x.reshape(x.shape[0], -1))


def test_toy_conv_and_dense():
  # Conv: 5*5*8 outputs, each 3*3*2 MACs = 3600. Dense: 200 inputs -> 4 outputs = 800.
  assert count_macs(_Toy(), (1, 5, 5, 2)) == 3600 + 800
  assert count_macs(_Toy(), (3, 5, 5, 2)) == 3 * (3600 + 800)


def test_toy_grouped_conv_divides_by_groups():
  # 4 input channels in 2 groups: each output sees 3*3*2 inputs.
  assert count_macs(_Toy(groups=2), (1, 5, 5, 4)) == 5 * 5 * 8 * 9 * 2 + 800
  assert count_macs(_Toy(groups=1), (1, 5, 5, 4)) == 5 * 5 * 8 * 9 * 4 + 800


def test_bn_and_activations_are_not_counted():
  assert count_macs(_Toy(norm=True), (1, 5, 5, 2)) == 3600 + 800


def test_walker_recurses_into_jit_remat_scan_and_cond():
  a = jnp.ones((2, 3))
  b = jnp.ones((3, 5))
  base = 2 * 3 * 5

  def scanned(a, b):
    return jax.lax.scan(lambda c, _: (c, c @ b), a, None, length=4)[1]

  def branched(a, b):
    return jax.lax.cond(True, lambda: (a @ b) @ b.T, lambda: a @ jnp.ones((3, 3)))

  assert jaxpr_macs(jax.make_jaxpr(lambda a, b: a @ b)(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(jax.jit(lambda a, b: a @ b))(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(jax.checkpoint(lambda a, b: a @ b))(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(scanned)(a, b)) == 4 * base
  assert jaxpr_macs(jax.make_jaxpr(branched)(a, b)) == base + 2 * 5 * 3
  # Batched matmul: batch 7 x (2x3 @ 3x5).
  batched = jax.make_jaxpr(jnp.matmul)(jnp.ones((7, 2, 3)), jnp.ones((7, 3, 5)))
  assert jaxpr_macs(batched) == 7 * base


def _bottleneck_resnet_by_hand(stage_sizes, base_width=16, stem_width=16, expansion=4,
                               cardinality=1, se_reduction=0, num_classes=10, size=32):
  """(params, batch_stats, MACs) of seed A's pre-activation bottleneck ResNet, from SPEC §1-§3."""
  params, stats = 9 * 3 * stem_width, 0
  macs = size * size * 9 * 3 * stem_width
  c = stem_width
  for i, units in enumerate(stage_sizes):
    w, out = base_width * 2**i, base_width * 2**i * expansion
    for j in range(units):
      bn = c + w + w  # the three BN channel counts of the unit
      params += 2 * bn + c * w + 9 * w * w // cardinality + w * out
      stats += 2 * bn
      macs += size * size * c * w  # the first 1x1 runs before the stride
      if i > 0 and j == 0:
        size //= 2
      macs += size * size * (9 * w * w // cardinality + w * out)
      if se_reduction:
        d = make_divisible(out / se_reduction, 8)
        params += out * d + d + d * out + out
        macs += 2 * out * d
      c = out
  params += 2 * c + c * num_classes + num_classes
  return params, stats + 2 * c, macs + c * num_classes


def test_hand_count_agrees_with_spec():
  assert _bottleneck_resnet_by_hand((3, 4, 6, 3))[:2] == (1_309_210, 11_360)
  assert _bottleneck_resnet_by_hand((3, 8, 36, 3), se_reduction=16)[:2] == (3_917_778, 35_936)
  resnext101 = _bottleneck_resnet_by_hand((3, 4, 23, 3), 32, 32, 2, 32)
  assert resnext101[:2] == (2_489_866, 32_576)
  assert round(resnext101[2] / 1e6, 2) == 154.28


@pytest.mark.parametrize('name,kwargs', [
    # No SPEC MACs for these: check them against the hand count that reproduces SPEC above.
    ('resnext152_c32', dict(stage_sizes=(3, 8, 36, 3), base_width=32, stem_width=32,
                            expansion=2, cardinality=32)),
    ('senet35', dict(stage_sizes=(2, 3, 4, 2), se_reduction=16)),
    ('senet50', dict(stage_sizes=(3, 4, 6, 3), se_reduction=16)),
    ('senet101', dict(stage_sizes=(3, 4, 23, 3), se_reduction=16)),
    ('senet152', dict(stage_sizes=(3, 8, 36, 3), se_reduction=16)),
])
def test_macs_by_hand(name, kwargs):
  assert count_macs(create_model(name)) == _bottleneck_resnet_by_hand(**kwargs)[2]


def test_resnext152_counts_by_hand():
  # The only ResNeXt depth with no SPEC count (SPEC §2 lists 50 and 101).
  expected = _bottleneck_resnet_by_hand((3, 8, 36, 3), 32, 32, 2, 32)[:2]
  assert count_params(create_model('resnext152_c32')) == expected

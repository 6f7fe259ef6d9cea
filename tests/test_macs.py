"""Tests for the conv/Dense multiply-accumulate counter (seed A's "FLOPs/2" column, SPEC §0)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcls.models import count_macs, create_model
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

"""PyramidNet (Han et al. 2017, "Deep Pyramidal Residual Networks", arXiv:1610.02915) in its
CIFAR form, with ShakeDrop (Yamada et al. 2018, arXiv:1802.02375): SPEC sections 9 and 11.

Easy to get wrong:
- Widening is ADDITIVE over all L units, not per stage: unit l (1..L) is
  round(16 + alpha * l / L) wide (x4 at the output of a bottleneck unit), so the width grows by
  alpha / L at every unit and the stride-2 units at the stage starts do not double it. The
  rounding is of the exact value, as imgclsmob and hysts/pytorch_image_classification do (they
  accumulate alpha / L in floats, then round half to even; no registered preset has a tie).
- The unit is BN -> conv -> BN -> ReLU -> conv -> BN (basic) or BN -> conv 1x1 -> BN -> ReLU ->
  conv 3x3 -> BN -> ReLU -> conv 1x1 -> BN (bottleneck, inner width = output / 4, stride on the
  3x3): it opens with BN and NO ReLU, ends with BN, and there is no ReLU after the addition.
- The shortcut has no parameters: AvgPool 2x2/2 when strided, then zero channels APPENDED after
  the input's (not split over both sides as in seed A's ResNetV2).
- The stem is conv 3x3 to 16 -> BN, no ReLU; the head is BN -> ReLU -> GAP -> Linear. 3x3 convs
  pad 1 pixel on every side as the papers' (Torch/PyTorch) code does.
- ShakeDrop multiplies the branch's last BN output before the addition; its p_l falls linearly
  over the L units from 1 to p_L = 0.5 at the last (`layers.ShakeDrop`, stream 'shakedrop').

The seven presets of imgclsmob's `pyramidnet_cifar.py` are registered under its names; on a
32x32x3 input with 10 classes they have exactly its trainable counts (BN scale and bias counted,
Flax `params`), e.g. pyramidnet110_a48 1,772,706 and pyramidnet272_a200_bn 26,210,842.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any
# Output width / inner width of a bottleneck unit.
EXPANSION = 4


def unit_widths(depth: int, alpha: float, bottleneck: bool, stem_width: int = 16) -> list[int]:
  """Output widths of the 3n units of PyramidNet-depth: round(stem + alpha * l / L), x4 for
  bottlenecks. Raises UserError unless depth = 6n + 2 (basic) or 9n + 2 (bottleneck), n >= 1."""
  per_unit_layers = 9 if bottleneck else 6
  if depth < per_unit_layers + 2 or (depth - 2) % per_unit_layers:
    raise UserError(f'model.depth: a {"bottleneck" if bottleneck else "basic"} PyramidNet needs '
                    f'depth = {per_unit_layers}n + 2 with n >= 1, got {depth}')
  num_units = 3 * ((depth - 2) // per_unit_layers)
  expansion = EXPANSION if bottleneck else 1
  return [expansion * round(stem_width + alpha * l / num_units)
          for l in range(1, num_units + 1)]


class PyramidUnit(nn.Module):
  """One PyramidNet unit: the branch (see the module docstring), its final BN, optional
  ShakeDrop, plus the pooled and zero-extended input."""
  features: int
  strides: int
  bottleneck: bool
  conv: ModuleDef
  norm: ModuleDef
  act: Any
  shakedrop: ModuleDef | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    s = (self.strides, self.strides)
    if self.bottleneck:
      inner = self.features // EXPANSION
      y = self.conv(inner, (1, 1))(self.norm()(x))
      y = self.conv(inner, (3, 3), s, padding=1)(self.act(self.norm()(y)))
      y = self.conv(self.features, (1, 1))(self.act(self.norm()(y)))
    else:
      y = self.conv(self.features, (3, 3), s, padding=1)(self.norm()(x))
      y = self.conv(self.features, (3, 3), padding=1)(self.act(self.norm()(y)))
    y = self.norm()(y)
    if self.shakedrop is not None:
      y = self.shakedrop()(y, train)
    return y + layers.pad_shortcut(x, self.features, self.strides, side='end')


class PyramidNet(nn.Module):
  """Additive PyramidNet-depth (alpha) for CIFAR-size inputs.

  Attributes:
    num_classes: outputs of the final Linear.
    depth: 6n + 2 (basic units) or 9n + 2 (bottleneck units); each of the 3 stages has n units.
    alpha: the total widening over all units (the paper's alpha).
    bottleneck: bottleneck units (1x1-3x3-1x1, output 4x the inner width) instead of basic ones.
    stem_width: channels of the stem conv, and the width units widen from (16 in the paper).
    shakedrop: ShakeDrop on every unit's branch (stream 'shakedrop').
    shakedrop_final_prob: p_L, the probability that the last unit's gate b_L = 1 (0.5 in the
      paper); p_l falls linearly from 1 over the units.
    shakedrop_level: image (one (alpha, beta) pair per image; default) | pixel | batch.
    activation: relu | mish | swish.
    convention: torch (the papers' code: kaiming fan_out normal convs, BN 0.9 / 1e-5) | keras.
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  depth: int = 110
  alpha: float = 48.0
  bottleneck: bool = False
  stem_width: int = 16
  shakedrop: bool = False
  shakedrop_final_prob: float = 0.5
  shakedrop_level: str = 'image'
  activation: str = 'relu'
  convention: str = 'torch'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    widths = unit_widths(self.depth, self.alpha, self.bottleneck, self.stem_width)
    if not 0.0 < self.shakedrop_final_prob <= 1.0:
      raise UserError(f'model.shakedrop_final_prob: {self.shakedrop_final_prob} is not in (0, 1]')
    if self.stem_width > widths[0]:
      raise UserError(f'model.alpha: {self.alpha} narrows the units below the stem width '
                      f'{self.stem_width}; the zero-pad shortcut can only widen')
    layers.check_choice('shakedrop_level', self.shakedrop_level)
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    act = layers.activation(self.activation)
    probs = layers.survival_probs(len(widths), self.shakedrop_final_prob)
    units_per_stage = len(widths) // 3

    x = conv(self.stem_width, (3, 3), padding=1, name='stem')(x.astype(self.dtype))
    x = norm(name='stem_norm')(x)
    for l, features in enumerate(widths):
      i, j = divmod(l, units_per_stage)
      shakedrop = None
      if self.shakedrop:
        shakedrop = functools.partial(layers.ShakeDrop, probs[l], self.shakedrop_level)
      x = PyramidUnit(features, 2 if i > 0 and j == 0 else 1, self.bottleneck, conv, norm, act,
                      shakedrop, name=f'stage{i + 1}_unit{j + 1}')(x, train)

    x = act(norm(name='head_norm')(x))
    x = jnp.mean(x, axis=(1, 2))
    dense = layers.dense_def(self.convention, self.dtype)
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def pyramidnet110_a48() -> PyramidNet:
  """Basic units, 110 layers, alpha 48: 1,772,706 params (imgclsmob, 10 classes)."""
  return PyramidNet(depth=110, alpha=48.0)


@register_model
def pyramidnet110_a84() -> PyramidNet:
  """Basic units, 110 layers, alpha 84: 3,904,446 params."""
  return PyramidNet(depth=110, alpha=84.0)


@register_model
def pyramidnet110_a270() -> PyramidNet:
  """Basic units, 110 layers, alpha 270: 28,485,477 params (ShakeDrop's PyramidNet)."""
  return PyramidNet(depth=110, alpha=270.0)


@register_model
def pyramidnet164_a270_bn() -> PyramidNet:
  """Bottleneck units, 164 layers, alpha 270: 27,216,021 params."""
  return PyramidNet(depth=164, alpha=270.0, bottleneck=True)


@register_model
def pyramidnet200_a240_bn() -> PyramidNet:
  """Bottleneck units, 200 layers, alpha 240: 26,752,702 params."""
  return PyramidNet(depth=200, alpha=240.0, bottleneck=True)


@register_model
def pyramidnet236_a220_bn() -> PyramidNet:
  """Bottleneck units, 236 layers, alpha 220: 26,969,046 params."""
  return PyramidNet(depth=236, alpha=220.0, bottleneck=True)


@register_model
def pyramidnet272_a200_bn() -> PyramidNet:
  """Bottleneck units, 272 layers, alpha 200: 26,210,842 params (3.31% CIFAR-10 error; 2.7%
  with ShakeDrop)."""
  return PyramidNet(depth=272, alpha=200.0, bottleneck=True)

"""The mobile inverted bottleneck (MBConv) that EfficientNet, MobileNetV3 and NAT are built of,
with the pieces they share: the block table (`Block`), the stem, the drop-connect schedule, the
layer conventions of their reference code (`tf_reference_defs`, `torch_defs`) and the model
fields of their two forms (`MBConvNet`).

MBConv (Sandler et al. 2018, MobileNetV2 §3.3; squeeze-and-excitation added by MnasNet, Tan et al.
2019 §4, and kept by EfficientNet and MobileNetV3):

    [1x1 expand -> BN -> act] -> kxk depthwise (stride s) -> BN -> act -> [SE] -> 1x1 project -> BN

plus the block input when s == 1 and the width is kept, through stochastic depth ("drop
connect" in the EfficientNet code).

Easy to get wrong:
- there is no expand conv when the hidden width equals the input width (EfficientNet's
  expand-ratio-1 blocks, the first block of MobileNetV3 and NAT), and the projection is linear;
- SE sits after the depthwise activation, on the hidden width, before the projection; its own
  hidden width differs per family (EfficientNet: 1/4 of the block's INPUT width; MobileNetV3 and
  NAT: 1/4 of the expanded width, made divisible by 8), so the family computes it; so is its
  inside (EfficientNet: Swish then sigmoid; MobileNetV3, NAT: ReLU then hard sigmoid);
- drop connect follows the reference code, not SPEC §9's p_l: block i = 0..N-1 drops with
  probability rate * i / N, so the first block never drops and the last almost reaches `rate`;
  only blocks with an identity shortcut drop.
"""

from collections.abc import Callable, Sequence
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers

ModuleDef = Any
Array = jax.Array

# The paper's "NL" column (MobileNetV3 Table 1-2) plus EfficientNet's Swish.
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    'RE': jax.nn.relu,
    'HS': jax.nn.hard_swish,  # x * relu6(x + 3) / 6
    'swish': jax.nn.swish,
}

# TF's reference EfficientNet and MobileNetV3 (and timm's `_init_weight_goog`): conv kernels
# N(0, 2 / fan_out) with fan_out = k*k*out/groups. For a depthwise conv that is k*k, which is
# Flax's fan_IN of its (k, k, 1, C) kernel; the classifier is U(+-1/sqrt(classes)).
CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
DEPTHWISE_INIT = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
CLASSIFIER_INIT = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_out', 'uniform')


class Block(NamedTuple):
  """One MBConv of a network's table; widths are final (already scaled and rounded)."""
  kernel_size: int
  hidden: int  # expanded width; equal to the input width: no expand conv
  features: int  # output width
  strides: int
  se_features: int  # hidden width of the SE; 0: no SE
  act: str  # a key of ACTIVATIONS


class Defs(NamedTuple):
  """The layer constructors a family's convention fixes (init, BN momentum and epsilon)."""
  conv: ModuleDef  # no bias, N(0, 2/fan_out)
  depthwise_init: Any
  norm: ModuleDef
  dense: ModuleDef  # 1x1 convs on pooled features (SE, MobileNetV3's pooled head): conv init
  classifier: ModuleDef
  # PyTorch pads k // 2 on every side; TF's 'SAME' pads one less before a stride-2 conv on an
  # even size. Same shapes and counts, a different alignment.
  symmetric_padding: bool = False

  def padding(self, kernel_size: int) -> Any:
    return kernel_size // 2 if self.symmetric_padding else 'SAME'


def _defs(dtype: Any, depthwise_init: Any, norm: ModuleDef, classifier: ModuleDef,
          symmetric_padding: bool) -> Defs:
  return Defs(conv=functools.partial(nn.Conv, use_bias=False, dtype=dtype, kernel_init=CONV_INIT),
              depthwise_init=depthwise_init, norm=norm,
              dense=functools.partial(nn.Dense, dtype=dtype, kernel_init=CONV_INIT),
              classifier=classifier, symmetric_padding=symmetric_padding)


def tf_reference_defs(dtype: Any, train: bool) -> Defs:
  """EfficientNet's and MobileNetV3's TF reference: the init above, BN momentum 0.99 (PyTorch
  0.01) and epsilon 1e-3 (torchvision's MobileNetV3 too; timm's `efficientnet_b0` and
  `mobilenetv3_large_100` keep PyTorch's 0.1 / 1e-5, i.e. Flax momentum 0.9), 'SAME' padding."""
  classifier = functools.partial(nn.Dense, dtype=dtype, kernel_init=CLASSIFIER_INIT)
  return _defs(dtype, DEPTHWISE_INIT, layers.norm_def('keras', dtype, train), classifier, False)


def torch_defs(dtype: Any, train: bool) -> Defs:
  """OFA's PyTorch code (NAT): every conv N(0, 2/fan_out) with fan_out = k*k*out (depthwise
  too, so smaller), nn.Linear's default classifier, BN momentum 0.1 (Flax 0.9), epsilon 1e-5,
  symmetric k // 2 padding."""
  return _defs(dtype, CONV_INIT, layers.norm_def('torch', dtype, train),
               layers.dense_def('torch', dtype), True)


class MBConv(nn.Module):
  """One MBConv block (module docstring). NHWC in, NHWC out at 1/strides the resolution."""
  block: Block
  defs: Defs
  survival_prob: float = 1.0
  drop_path_mode: str = 'sample'
  se_gate: Callable[[Array], Array] = jax.nn.sigmoid
  se_act: Callable[[Array], Array] = jax.nn.relu

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    b, d = self.block, self.defs
    act = ACTIVATIONS[b.act]
    y = x
    if b.hidden != x.shape[-1]:
      y = act(d.norm(name='expand_norm')(d.conv(b.hidden, (1, 1), name='expand')(y)))
    y = d.conv(b.hidden, (b.kernel_size, b.kernel_size), (b.strides, b.strides),
               padding=d.padding(b.kernel_size), feature_group_count=b.hidden,
               kernel_init=d.depthwise_init, name='depthwise')(y)
    y = act(d.norm(name='depthwise_norm')(y))
    if b.se_features:
      y = layers.SqueezeExcite(hidden=b.se_features, dense=d.dense, act=self.se_act,
                               gate=self.se_gate, name='se')(y)
    y = d.norm(name='project_norm')(d.conv(b.features, (1, 1), name='project')(y))
    if b.strides == 1 and x.shape[-1] == b.features:
      return layers.StochasticDepth(self.survival_prob, self.drop_path_mode,
                                    name='drop_path')(x, y, train)
    return y


def check_rates(drop_connect_rate: float, dropout_rate: float) -> None:
  """Raises UserError unless both rates lie in [0, 1)."""
  for field, rate in (('drop_connect_rate', drop_connect_rate), ('dropout_rate', dropout_rate)):
    if not 0.0 <= rate < 1.0:
      raise UserError(f'model.{field}: must be in [0, 1) (0 disables it), got {rate}')


def conv_stem(x: Array, features: int, act: str, defs: Defs, *, form: str,
              upsample: int) -> Array:
  """The stem of all three families: conv 3x3 stride 2 -> BN -> act.

  In the 'cifar' `form` (the model field `stem`) the input is first upsampled `upsample` times
  by nearest-neighbour repetition; the 'imagenet' form takes it as it comes. Raises UserError
  for another form or a bad factor.
  """
  if layers.check_choice('stem', form) == 'cifar':
    x = layers.upsample_nearest(x, upsample)
  x = defs.conv(features, (3, 3), (2, 2), padding=defs.padding(3), name='stem')(x)
  return ACTIVATIONS[act](defs.norm(name='stem_norm')(x))


def drop_connect_survival(num_blocks: int, rate: float) -> list[float]:
  """Survival probability of blocks i = 0..N-1: 1 - rate * i / N (TF EfficientNet, timm, NAT)."""
  return [1.0 - rate * i / num_blocks for i in range(num_blocks)]


def blocks(x: Array, table: Sequence[Block], defs: Defs, train: bool, *,
           drop_connect_rate: float = 0.0, drop_path_mode: str = 'sample',
           se_gate: Callable[[Array], Array] = jax.nn.sigmoid,
           se_act: Callable[[Array], Array] = jax.nn.relu) -> Array:
  """The blocks of `table` in order, named block1..blockN, with `drop_connect_survival`.

  Must be called inside a compact method: the blocks become submodules of the caller.
  """
  survival = drop_connect_survival(len(table), drop_connect_rate)
  for i, (block, p) in enumerate(zip(table, survival)):
    x = MBConv(block, defs, p, drop_path_mode, se_gate=se_gate, se_act=se_act,
               name=f'block{i + 1}')(x, train)
  return x


class MBConvNet(nn.Module):
  """The fields every MBConv family shares; a family adds its table's fields and `__call__`.

  Attributes:
    num_classes: outputs of the classifier.
    drop_connect_rate: stochastic depth of the blocks with an identity shortcut, rising from 0
      (`drop_connect_survival`); 0 disables it.
    drop_path_mode: 'sample' (timm, the TF code: per sample, scaled by 1/p) or 'batch' (seed A).
    dropout_rate: dropout before the classifier (the 'dropout' rng stream).
    stem: 'cifar' upsamples the input by `upsample`; 'imagenet' takes it as it comes.
    upsample: the nearest-neighbour factor of the 'cifar' form (7: 32 -> 224 px).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  drop_connect_rate: float = 0.0
  drop_path_mode: str = 'sample'
  dropout_rate: float = 0.2
  stem: str = 'cifar'
  upsample: int = 7
  dtype: Any = jnp.float32

  def features(self, x: Array, table: Sequence[Block], stem_width: int, stem_act: str,
               defs: Defs, train: bool, *, se_act: Callable[[Array], Array],
               se_gate: Callable[[Array], Array]) -> Array:
    """Stem and blocks (call from the family's compact `__call__`); NHWC features out."""
    check_rates(self.drop_connect_rate, self.dropout_rate)
    x = conv_stem(x.astype(self.dtype), stem_width, stem_act, defs, form=self.stem,
                  upsample=self.upsample)
    return blocks(x, table, defs, train, drop_connect_rate=self.drop_connect_rate,
                  drop_path_mode=self.drop_path_mode, se_act=se_act, se_gate=se_gate)

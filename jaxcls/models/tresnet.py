"""TResNet (Ridnik et al. 2021, "TResNet: High Performance GPU-Dedicated Architecture"), with
inplace-ABN replaced by BatchNorm + leaky ReLU, as timm's `tresnet_m` does in effect.

The network (Sec. 3): a SpaceToDepth stem (4x4 pixel blocks to 16x the channels) -> 3x3 conv ->
BN -> leaky ReLU(0.01); two stages of basic blocks, two of bottlenecks (TResNet-M: 3, 4, 11, 3
units); squeeze-and-excitation in the first three stages; anti-aliased downsampling; GAP -> Dense.

Forms (`stem`):
- 'imagenet', the paper's TResNet-M on 224x224x3 (timm): stage widths 64, 128, 256, 512, the
  bottleneck stages output 4x (1024, 2048); SE hidden width max(C/4, 64) in basic blocks and
  max(4C/8, 64) in bottlenecks (C the block width).
- 'cifar', seed A's later CIFAR form (MoonArchitect/tensorflow-CNNs, 2021 `TResNet.py`): the
  32x32 input upsampled by nearest-neighbour repetition (`upsample` 3: 96 px, seed A's
  95.03% row), then the same SpaceToDepth stem; stage OUTPUT widths 64, 128, 256, 512, i.e. the
  bottlenecks run at inner widths 64 and 128; SE hidden make_divisible(C/4, 8) in basic blocks
  and make_divisible(C/8, 8) in bottlenecks. Its stem and shortcut convs carry no L2 there, so
  they are named `*_no_l2` (`weight_decay_on='conv_kernels'` leaves them out; the SE is Dense).
  3,162,130 params + 17,792 batch_stats = 3,179,922 (seed A's "3.2 M"), 382.46M MACs at 96 px.

Easy to get wrong:
- Anti-aliasing (Zhang 2019; TResNet Sec. 3.2): a strided conv runs at stride 1, then BN and
  the leaky ReLU(1e-3), then a fixed 3x3 binomial blur ([1, 2, 1] x [1, 2, 1] / 16, depthwise,
  reflect-padded by 1) at stride 2 ("BlurPool"). It is a convolution, so `count_macs` counts
  its 9 MACs per output value. Seed A blurred before the BN with zero padding instead; the
  counts are the same.
- The stride sits on the 3x3 conv of the first unit of stages 2-4; the shortcut there is
  AvgPool 2x2/2 (ceil mode, real pixels only) -> 1x1 conv -> BN (no activation). Each block
  ends in ReLU after the add; the last BN of the branch has no activation before it.
- In a bottleneck the SE sits after the 3x3 (and its blur), on the inner width, before the
  last 1x1 conv; in a basic block after the second conv's BN. Stage 4 has no SE.
- Counts: tresnet_m at stem='imagenet', 1000 classes: 31,389,032 params + 61,568 batch_stats
  (timm); 29,360,522 with 10 classes.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers
from jaxcls.models.registry import register_model

ModuleDef = Any

SPACE_TO_DEPTH_BLOCK = 4
_SLOPE = 1e-3  # the blocks' leaky ReLU; the stem's is 0.01


def space_to_depth(x: jax.Array, block: int = SPACE_TO_DEPTH_BLOCK) -> jax.Array:
  """(N, H, W, C) -> (N, H/b, W/b, b*b*C), each b x b pixel block stacked on the channels.

  Channel order (row in block, column in block, c), as timm's SpaceToDepth (NCHW) orders them.
  """
  n, h, w, c = x.shape
  if h % block or w % block:
    raise UserError(f'model: SpaceToDepth needs an input size divisible by {block}, got '
                    f'{h}x{w}')
  x = x.reshape(n, h // block, block, w // block, block, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // block, w // block, block * block * c)


def blur_pool(x: jax.Array) -> jax.Array:
  """Anti-aliased 2x downsampling: reflect-pad 1, depthwise [1,2,1]x[1,2,1]/16, stride 2."""
  taps = jnp.array([1.0, 2.0, 1.0])
  kernel = (taps[:, None] * taps[None, :] / 16.0).astype(x.dtype)
  channels = x.shape[-1]
  x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
  return jax.lax.conv_general_dilated(
      x, jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels)), (2, 2), 'VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=channels)


class ConvNormAct(nn.Module):
  """Conv (stride 1) -> BN [-> leaky ReLU] [-> blur pool when strided]: TResNet's conv unit."""
  features: int
  kernel_size: tuple[int, int]
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  slope: float | None = _SLOPE  # None: no activation

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.norm()(self.conv(self.features, self.kernel_size)(x))
    if self.slope is not None:
      x = jax.nn.leaky_relu(x, self.slope)
    return blur_pool(x) if self.strides > 1 else x


class Block(nn.Module):
  """Basic (3x3 -> 3x3 [-> SE]) or bottleneck (1x1 -> 3x3 [-> SE] -> 1x1) TResNet block, plus
  the shortcut, then ReLU. `features` is the inner width; the block outputs `out_features`."""
  features: int
  out_features: int
  strides: int
  bottleneck: bool
  se_hidden: int  # 0: no SE
  conv: ModuleDef
  norm: ModuleDef
  dense: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    unit = dict(conv=self.conv, norm=self.norm)
    y = x
    if self.bottleneck:
      y = ConvNormAct(self.features, (1, 1), **unit)(y)
    y = ConvNormAct(self.features, (3, 3), strides=self.strides, **unit)(y)
    if not self.bottleneck:
      y = ConvNormAct(self.out_features, (3, 3), slope=None, **unit)(y)
    if self.se_hidden:
      y = layers.SqueezeExcite(dense=self.dense, hidden=self.se_hidden)(y)
    if self.bottleneck:
      y = ConvNormAct(self.out_features, (1, 1), slope=None, **unit)(y)
    shortcut = layers.Shortcut(self.out_features, self.strides, self.conv, self.norm,
                               avg_down=True, name='shortcut' + layers.NO_L2_SUFFIX)(x)
    return nn.relu(y + shortcut)


def stage_plan(stem: str, width_factor: float) -> list[tuple[int, int, bool, int]]:
  """(inner width, output width, bottleneck, SE hidden width or 0) of the four stages."""
  plan = []
  for i, base in enumerate((64, 128, 256, 512)):
    width = layers.make_divisible(base * width_factor, 8)
    bottleneck = i >= 2
    if stem == 'imagenet':
      inner, out = width, width * (4 if bottleneck else 1)
      se = max(out // (8 if bottleneck else 4), 64)
    else:  # seed A: the stage width is the block OUTPUT; a bottleneck runs at a quarter of it
      inner, out = width // (4 if bottleneck else 1), width
      se = layers.make_divisible(inner / (8 if bottleneck else 4), 8)
    plan.append((inner, out, bottleneck, se if i < 3 else 0))
  return plan


class TResNet(nn.Module):
  """TResNet with BN + leaky ReLU in place of inplace-ABN.

  Attributes:
    num_classes: outputs of the final Dense.
    stage_sizes: blocks per stage (M: 3, 4, 11, 3); stages 1-2 basic, 3-4 bottleneck, stride 2
      from stage 2 on.
    width_factor: scales the stage widths (make_divisible(w * width_factor, 8)) and the stem.
    stem: imagenet (the paper's widths, timm's SE widths) | cifar (seed A's later CIFAR form).
    upsample: integer nearest-neighbour factor applied to the input first (3: 32 -> 96 px);
      None: 3 in the cifar form (seed A's 96 px row), 1 in the imagenet form.
    convention: keras (seed A's inits, BN 0.99 / 1e-3) | torch (kaiming fan_out, BN 0.9 / 1e-5).
    dtype: compute dtype; parameters and batch_stats stay float32, logits are float32.
  """
  num_classes: int = 10
  stage_sizes: tuple[int, ...] = (3, 4, 11, 3)
  width_factor: float = 1.0
  stem: str = 'cifar'
  upsample: int | None = None
  convention: str = 'keras'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if len(self.stage_sizes) != 4:
      raise UserError(f'model.stage_sizes: TResNet has 4 stages, got {self.stage_sizes}')
    stem = layers.check_choice('stem', self.stem)
    upsample = self.upsample if self.upsample is not None else (3 if stem == 'cifar' else 1)
    if not isinstance(upsample, int) or upsample < 1:
      raise UserError(f'model.upsample: must be a positive integer (3 gives 96 px from 32), '
                      f'got {upsample!r}')
    conv = layers.conv_def(self.convention, self.dtype)
    norm = layers.norm_def(self.convention, self.dtype, train)
    dense = layers.dense_def(self.convention, self.dtype)
    plan = stage_plan(stem, self.width_factor)

    x = x.astype(self.dtype)
    if upsample > 1:
      x = jnp.repeat(jnp.repeat(x, upsample, axis=1), upsample, axis=2)
    x = space_to_depth(x)
    x = conv(layers.make_divisible(64 * self.width_factor, 8), (3, 3),
             name='stem' + layers.NO_L2_SUFFIX)(x)
    x = jax.nn.leaky_relu(norm(name='stem_norm')(x), 0.01)
    for i, (num_blocks, (inner, out, bottleneck, se)) in enumerate(zip(self.stage_sizes, plan)):
      for j in range(num_blocks):
        x = Block(inner, out, 2 if i > 0 and j == 0 else 1, bottleneck, se, conv, norm, dense,
                  name=f'stage{i + 1}_unit{j + 1}')(x)
    x = jnp.mean(x, axis=(1, 2))
    return dense(self.num_classes, name='head')(x).astype(jnp.float32)


@register_model
def tresnet_m() -> TResNet:
  """TResNet-M, blocks 3,4,11,3. stem='imagenet', 1000 classes: 31,389,032 params + 61,568
  batch_stats (timm); stem='cifar' (96 px): seed A's later 3.2M form."""
  return TResNet()

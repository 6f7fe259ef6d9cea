"""MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3"): Large and Small, Tables 1 and 2.

Two forms (`stem`):
- 'imagenet': the paper's network on its input as it comes (224x224x3). With 1000 classes:
  Large 5,483,032 params + 24,400 BN statistics, Small 2,542,856 + 12,112, exactly timm's
  `mobilenetv3_large_100` / `mobilenetv3_small_100` and torchvision's.
- 'cifar' (default): seed A's later CIFAR port (MoonArchitect/tensorflow-CNNs, 2021): the
  32x32 input upsampled by nearest-neighbour repetition, `upsample` = 4, 5, 6 or 7 for its
  128, 160, 192 and 224 px rows (default 7: the paper's 224). Unlike seed A, whose port drops
  the 1280-wide head, gates SE with Swish, uses Swish for h-swish and expands Large's eighth
  block to 240 (the paper: 200), the network here is the paper's.

Easy to get wrong:
- blocks are MBConv (jaxcls/models/mbconv.py) with ReLU ('RE') or h-swish ('HS') as the table
  says, the stem is 3x3/2 to 16 with h-swish; the first block (expansion 16 = its input) has no
  expand conv;
- the SE hidden width is make_divisible(expanded / 4, 8) with ReLU inside and a hard-sigmoid
  gate relu6(x + 3) / 6;
- the head: 1x1 conv to 960 (Small: 576) -> BN -> h-swish -> global pool -> 1x1 conv WITH bias
  and no BN to 1280 (Small: 1024) -> h-swish -> dropout 0.2 -> classifier;
- `width_mult` scales every block and the stem through make_divisible(c * width_mult, 8); the
  pooled head (1280 / 1024) stays as it is (timm);
- BN momentum 0.99, epsilon 1e-3 (TF's reference and torchvision; timm keeps PyTorch's
  0.1 / 1e-5), convs N(0, 2/fan_out), TF's 'SAME' padding (the counts do not depend on it).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.models import layers, mbconv
from jaxcls.models.registry import register_model

# (kernel, expanded width, output width, SE, nonlinearity, stride): the paper's Tables 1 and 2.
LARGE = ((3, 16, 16, False, 'RE', 1), (3, 64, 24, False, 'RE', 2), (3, 72, 24, False, 'RE', 1),
         (5, 72, 40, True, 'RE', 2), (5, 120, 40, True, 'RE', 1), (5, 120, 40, True, 'RE', 1),
         (3, 240, 80, False, 'HS', 2), (3, 200, 80, False, 'HS', 1),
         (3, 184, 80, False, 'HS', 1), (3, 184, 80, False, 'HS', 1),
         (3, 480, 112, True, 'HS', 1), (3, 672, 112, True, 'HS', 1),
         (5, 672, 160, True, 'HS', 2), (5, 960, 160, True, 'HS', 1),
         (5, 960, 160, True, 'HS', 1))
SMALL = ((3, 16, 16, True, 'RE', 2), (3, 72, 24, False, 'RE', 2), (3, 88, 24, False, 'RE', 1),
         (5, 96, 40, True, 'HS', 2), (5, 240, 40, True, 'HS', 1), (5, 240, 40, True, 'HS', 1),
         (5, 120, 48, True, 'HS', 1), (5, 144, 48, True, 'HS', 1),
         (5, 288, 96, True, 'HS', 2), (5, 576, 96, True, 'HS', 1), (5, 576, 96, True, 'HS', 1))
STEM_WIDTH = 16


def head(x: jax.Array, expand_width: int, pooled_width: int, num_classes: int,
         dropout_rate: float, defs: mbconv.Defs, train: bool, *, mix_bias: bool) -> jax.Array:
  """1x1 conv -> BN -> h-swish -> global pool -> Dense(pooled_width) -> h-swish -> dropout
  -> classifier: the MobileNetV3 head (Howard et al. 2019 §5.3), shared with NAT, whose pooled
  1x1 ("feature mix") has no bias. Returns float32 logits."""
  x = defs.conv(expand_width, (1, 1), name='head_conv')(x)
  x = jax.nn.hard_swish(defs.norm(name='head_norm')(x))
  x = jnp.mean(x, axis=(1, 2))
  x = jax.nn.hard_swish(defs.dense(pooled_width, use_bias=mix_bias, name='head_mix')(x))
  x = nn.Dropout(dropout_rate, deterministic=not train)(x)
  return defs.classifier(num_classes, name='head')(x).astype(jnp.float32)


def se_width(hidden: int) -> int:
  """The SE hidden width of MobileNetV3 and NAT: make_divisible(expanded // 4, 8)."""
  return layers.make_divisible(hidden // 4)


def scaled_table(rows: tuple[tuple[int, int, int, bool, str, int], ...],
                 width_mult: float) -> list[mbconv.Block]:
  """The MBConv table of the paper's rows, widths scaled by `width_mult`."""
  def width(c: int) -> int:
    return layers.make_divisible(c * width_mult)
  return [mbconv.Block(kernel_size=k, hidden=width(e), features=width(c), strides=s,
                       se_features=se_width(width(e)) if se else 0, act=nl)
          for k, e, c, se, nl, s in rows]


class MobileNetV3(mbconv.MBConvNet):
  """MobileNetV3 from a table of (kernel, expanded, out, SE, NL, stride) rows.

  Attributes (and `mbconv.MBConvNet`'s; drop connect is off by default, as in the paper):
    table: the rows of the paper's Table 1 (`LARGE`) or Table 2 (`SMALL`).
    head_width: the pooled 1x1 conv's width (Large 1280, Small 1024).
    width_mult: scales the stem and block widths (make_divisible(c * width_mult, 8)).
  """
  table: tuple[tuple[int, int, int, bool, str, int], ...] = LARGE
  head_width: int = 1280
  width_mult: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    defs = mbconv.tf_reference_defs(self.dtype, train)
    x = self.features(x, scaled_table(self.table, self.width_mult),
                      layers.make_divisible(STEM_WIDTH * self.width_mult), 'HS', defs, train,
                      se_act=jax.nn.relu, se_gate=jax.nn.hard_sigmoid)
    # The last 1x1 is six times the last block's width: 960 (Large), 576 (Small).
    expand_width = layers.make_divisible(6 * self.table[-1][2] * self.width_mult)
    return head(x, expand_width, self.head_width, self.num_classes, self.dropout_rate, defs,
                train, mix_bias=True)


@register_model
def mobilenetv3_large() -> MobileNetV3:
  """Large, width 1.0: 5,483,032 params + 24,400 batch_stats with 1000 classes at 224 px
  (timm, torchvision), 4,214,842 params with 10."""
  return MobileNetV3()


@register_model
def mobilenetv3_small() -> MobileNetV3:
  """Small, width 1.0: 2,542,856 params + 12,112 batch_stats with 1000 classes at 224 px."""
  return MobileNetV3(table=SMALL, head_width=1024)

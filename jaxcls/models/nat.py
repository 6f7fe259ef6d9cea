"""NAT (Lu et al. 2020, "Neural Architecture Transfer", TPAMI 2021): MobileNetV3-style subnets of
the Once-for-All space (Cai et al. 2020), each described by an encoding, as the NAT code builds
them (human-analysis/neural-architecture-transfer, `NATNet`; OFA's `MobileNetV3`). Not the
Neighborhood Attention Transformer, which took the name later.

The encoding (SPEC §11): `ks` (kernel 3/5/7) and `e` (expand ratio 3/4/6), one per block;
`d` (2..4), the blocks of each of the five stages; `w` the width multiplier; `r` the input
resolution. The fixed skeleton: stem 3x3/2 to 16w with h-swish; a first block of 16w with no
expansion (3x3, ReLU, identity shortcut); five stages of widths 24/40/80/112/160 (times w),
first strides 2/2/2/1/2, ReLU in the first two then h-swish, SE in the 2nd, 4th and 5th; the
MobileNetV3 head 960w -> pool -> 1280w (no bias) -> dropout -> classifier.

Two forms (`stem`):
- 'imagenet': the subnet on its input as it comes (r x r x 3, r = 224 for both registered nets).
- 'cifar' (default): NAT transferred to CIFAR-10 by resizing the 32x32 images to r; here the
  input is upsampled by nearest-neighbour repetition, `upsample` = r / 32 = 7 (NAT resized
  bicubically).

Easy to get wrong:
- widths are make_divisible(c * w, 8) (so w = 1.2 gives 24/32/48/96/136/192, head 1152 -> 1536);
  a block's expanded width is make_divisible(round(in * e), 8), and its SE hidden width
  make_divisible(expanded // 4, 8), gated by a hard sigmoid;
- the published CIFAR-10 subnet files give `w` only for M2 (1.2); M1's omits it, and its
  net.config has the widths of w = 1.2 too (stem 24, head 1152 -> 1536), so both use 1.2;
- OFA's PyTorch conventions (BN momentum 0.1, i.e. Flax 0.9, epsilon 1e-5, kaiming fan-out
  init, symmetric padding); drop connect as EfficientNet's (`rate * i / N`), default off;
  dropout 0.2 before the classifier (the net.config).
"""

import flax.linen as nn
import jax

from jaxcls.errors import UserError
from jaxcls.models import layers, mbconv
from jaxcls.models.mobilenet_v3 import head, se_width
from jaxcls.models.registry import register_model

# OFA's MobileNetV3 skeleton: stem/first-block width, then per stage (width, first stride,
# nonlinearity, SE); head widths. All are multiplied by w.
FIRST_WIDTH = 16
STAGES = ((24, 2, 'RE', False), (40, 2, 'RE', True), (80, 2, 'HS', False),
          (112, 1, 'HS', True), (160, 2, 'HS', True))
HEAD_WIDTHS = (960, 1280)
KERNEL_SIZES = (3, 5, 7)
EXPAND_RATIOS = (3, 4, 6)
DEPTHS = (2, 3, 4)


def check_encoding(ks: tuple[int, ...], e: tuple[int, ...], d: tuple[int, ...]) -> None:
  """Raises UserError unless (ks, e, d) is a subnet of the OFA space."""
  if len(d) != len(STAGES) or any(n not in DEPTHS for n in d):
    raise UserError(f'model.d: one depth in {DEPTHS} per stage ({len(STAGES)} stages), got {d}')
  for field, values, allowed in (('ks', ks, KERNEL_SIZES), ('e', e, EXPAND_RATIOS)):
    if len(values) != sum(d) or any(v not in allowed for v in values):
      raise UserError(f'model.{field}: one value in {allowed} per block (sum(d) = {sum(d)} '
                      f'blocks), got {values}')


def subnet_table(ks: tuple[int, ...], e: tuple[int, ...], d: tuple[int, ...],
                 w: float) -> list[mbconv.Block]:
  """The MBConv table of encoding (ks, e, d, w), the first (unexpanded) block included."""
  first = layers.make_divisible(FIRST_WIDTH * w)
  table = [mbconv.Block(kernel_size=3, hidden=first, features=first, strides=1, se_features=0,
                        act='RE')]
  in_features, i = first, 0
  for (width, stride, act, se), depth in zip(STAGES, d):
    features = layers.make_divisible(width * w)
    for j in range(depth):
      hidden = layers.make_divisible(round(in_features * e[i]))
      table.append(mbconv.Block(kernel_size=ks[i], hidden=hidden, features=features,
                                strides=stride if j == 0 else 1,
                                se_features=se_width(hidden) if se else 0, act=act))
      in_features, i = features, i + 1
  return table


class NAT(mbconv.MBConvNet):
  """A NAT subnet from its encoding (module docstring).

  Attributes (and `mbconv.MBConvNet`'s; drop connect is off by default):
    ks, e: kernel size and expand ratio of each block after the first (sum(d) of each).
    d: blocks per stage (five values in 2..4).
    w: width multiplier.
  """
  ks: tuple[int, ...] = ()
  e: tuple[int, ...] = ()
  d: tuple[int, ...] = ()
  w: float = 1.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    check_encoding(self.ks, self.e, self.d)
    defs = mbconv.torch_defs(self.dtype, train)
    x = self.features(x, subnet_table(self.ks, self.e, self.d, self.w),
                      layers.make_divisible(FIRST_WIDTH * self.w), 'HS', defs, train,
                      se_act=jax.nn.relu, se_gate=jax.nn.hard_sigmoid)
    expand_width, mix_width = (layers.make_divisible(c * self.w) for c in HEAD_WIDTHS)
    return head(x, expand_width, mix_width, self.num_classes, self.dropout_rate, defs, train,
                mix_bias=False)


@register_model
def nat_m1() -> NAT:
  """NAT's CIFAR-10 subnet "net-img@224-flops@392-top1@98.2" (98.2% transferred from ImageNet)."""
  return NAT(ks=(3, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7),
             e=(3, 3, 4, 6, 4, 4, 4, 3, 6, 4, 6, 3, 4, 6, 3), d=(2, 2, 4, 3, 4))


@register_model
def nat_m2() -> NAT:
  """NAT's CIFAR-10 subnet "net-img@224-flops@468-top1@98.4" (98.4% transferred from ImageNet)."""
  return NAT(ks=(7, 7, 7, 7, 7, 3, 7, 5, 7, 7, 7, 3, 7, 7, 7, 3),
             e=(3, 3, 6, 4, 6, 4, 3, 3, 6, 4, 6, 6, 6, 6, 3, 3), d=(2, 2, 4, 4, 4))

"""Parameter counts and MACs of every registered model (SPEC §1-§6), and the MACs walker."""

from decimal import Decimal
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcls.models import count_macs, count_params, create_model, list_models, zoo
from jaxcls.models.layers import make_divisible
from jaxcls.models.macs import jaxpr_macs
from tests.conftest import eval_forward_macs

CIFAR = (1, 32, 32, 3)
FASHION = (1, 28, 28, 1)


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
  resnet50b = _bottleneck_resnet_by_hand((3, 4, 6, 3))
  assert resnet50b[:2] == (1_309_210, 11_360)
  assert round(resnet50b[2] / 1e6, 3) == 74.110
  assert _bottleneck_resnet_by_hand((3, 8, 36, 3), se_reduction=16)[:2] == (3_917_778, 35_936)
  resnext101 = _bottleneck_resnet_by_hand((3, 4, 23, 3), 32, 32, 2, 32)
  assert resnext101[:2] == (2_489_866, 32_576)
  assert round(resnext101[2] / 1e6, 2) == 154.28


def _wrn_by_hand(depth, widen, channels=1, size=28, num_classes=10):
  """(params, batch_stats, MACs) of WRN-depth-widen as SPEC §6.1 describes it."""
  params, stats, macs = 9 * channels * 16, 0, size * size * 9 * channels * 16
  c = 16
  for i in range(3):
    w = 16 * widen * 2**i
    for j in range((depth - 4) // 6):
      if i > 0 and j == 0:
        size = (size + 1) // 2
      params += 2 * c + 9 * c * w + 2 * w + 9 * w * w
      stats += 2 * c + 2 * w
      macs += size * size * (9 * c * w + 9 * w * w)
      if c != w:  # the 1x1 projection
        params += c * w
        macs += size * size * c * w
      c = w
  return (params + 2 * c + c * num_classes + num_classes, stats + 2 * c,
          macs + c * num_classes)


def _dpn_by_hand(stage_sizes=(4, 4, 4), filters=(160, 320, 640), growth_rates=(16, 32, 64),
                 channels=1, size=28, num_classes=10):
  """(params, batch_stats, MACs) of seed B's DPN as SPEC §6.3 describes it."""
  params, stats, macs = 9 * channels * 16, 0, size * size * 9 * channels * 16
  c = 16
  for i, (n, f, g) in enumerate(zip(stage_sizes, filters, growth_rates)):
    if i:
      size = (size + 1) // 2
    # Transition: BN, 3x3 to f, BN, 3x3 f to f, 1x1 projection, and the 3x3 to 2g on raw x.
    params += 2 * c + 9 * c * f + 2 * f + 9 * f * f + c * f + 9 * c * 2 * g
    stats += 2 * c + 2 * f
    macs += size * size * (9 * c * f + 9 * f * f + c * f + 9 * c * 2 * g)
    c = f + 2 * g
    for _ in range(n - 1):
      params += 2 * c + 9 * c * (f + g) + 2 * (f + g) + 9 * (f + g)**2
      stats += 2 * c + 2 * (f + g)
      macs += size * size * (9 * c * (f + g) + 9 * (f + g)**2)
      c += g
  return (params + 2 * c + c * num_classes + num_classes, stats + 2 * c,
          macs + c * num_classes)


def _shake_shake_by_hand(depth, base, channels=1, size=28, num_classes=10):
  """(params, batch_stats, MACs) of Shake-Shake-depth 2 x base d as SPEC §6.4 describes it."""
  params, stats = 9 * channels * base + 2 * base, 2 * base  # stem conv and its BN
  macs = size * size * 9 * channels * base
  c = base
  for i in range(3):
    w = base * 2**i
    for j in range((depth - 2) // 6):
      if i > 0 and j == 0:
        size = (size + 1) // 2
      params += 2 * (9 * c * w + 2 * w + 9 * w * w + 2 * w)  # two branches
      stats += 2 * (4 * w)
      macs += 2 * size * size * (9 * c * w + 9 * w * w)
      if c != w:  # two 1x1 convs (c to c) on the subsampled input, concatenated, BN
        params += 2 * c * c + 2 * w
        stats += 2 * w
        macs += 2 * size * size * c * c
      c = w
  return params + c * num_classes + num_classes, stats, macs + c * num_classes


def test_seed_b_hand_counts_agree_with_spec():
  assert _wrn_by_hand(28, 10)[0] == 36_478_906
  assert _wrn_by_hand(28, 10, channels=3, size=32)[0] == 36_479_194
  assert _dpn_by_hand()[0] == 47_751_450
  assert _shake_shake_by_hand(26, 96)[0] == 26_330_026
  assert _shake_shake_by_hand(26, 64)[0] == 11_708_362


# Hand counts for the rows SPEC gives no figures for (validated against SPEC below).
RESNEXT152 = _bottleneck_resnet_by_hand((3, 8, 36, 3), 32, 32, 2, 32)
SENET_MACS = {n: _bottleneck_resnet_by_hand(sizes, se_reduction=16)[2] for n, sizes in [
    ('senet35', (2, 3, 4, 2)), ('senet50', (3, 4, 6, 3)), ('senet101', (3, 4, 23, 3)),
    ('senet152', (3, 8, 36, 3))]}

# (row, model, overrides, input shape, params, batch_stats, MACs). A string MACs is SPEC's figure
# in millions, matched to its printed digits; an int is an exact hand count; None: no figure.
ROWS = [
    ('resnet18', 'resnet18', {}, CIFAR, 690_266, 1_952, '34.65'),
    ('resnet34', 'resnet34', {}, CIFAR, 1_323_418, 3_808, '72.402'),
    ('resnet35b', 'resnet35b', {}, CIFAR, 866_010, 7_712, '51.828'),
    ('resnet50b', 'resnet50b', {}, CIFAR, 1_309_210, 11_360, '74.110'),
    ('resnet101b', 'resnet101b', {}, CIFAR, 2_506_010, 24_416, '149.870'),
    ('resnet152b', 'resnet152b', {}, CIFAR, 3_492_378, 35_936, '225.629'),
    ('resnet170b', 'resnet170b', {}, CIFAR, 4_372_698, 41_504, '252.368'),
    ('wideresnet18', 'wideresnet18', {}, CIFAR, 11_182_410, 23_168, '609.964'),
    ('resnext50_c32', 'resnext50_c32', {}, CIFAR, 1_280_010, 15_168, '77.96'),
    ('resnext101_c32', 'resnext101_c32', {}, CIFAR, 2_489_866, 32_576, '154.28'),
    ('resnext152_c32', 'resnext152_c32', {}, CIFAR, *RESNEXT152),
    ('senet35', 'senet35', {}, CIFAR, 975_234, 7_712, SENET_MACS['senet35']),
    ('senet50', 'senet50', {}, CIFAR, 1_471_954, 11_360, SENET_MACS['senet50']),
    ('senet101', 'senet101', {}, CIFAR, 2_812_642, 24_416, SENET_MACS['senet101']),
    ('senet152', 'senet152', {}, CIFAR, 3_917_778, 35_936, SENET_MACS['senet152']),
    # DenseNet: SPEC gives params and the total with BN statistics.
    ('densenet100k12', 'densenet100k12', {}, CIFAR, 769_162, 793_150 - 769_162, '287.9'),
    ('densenet100k16', 'densenet100k16', {}, CIFAR, 1_354_922, 1_386_906 - 1_354_922, '511.6'),
    ('densenet160k12', 'densenet160k12', {}, CIFAR, 1_739_002, 1_795_090 - 1_739_002, '624.2'),
    ('densenet250k12', 'densenet250k12', {}, CIFAR, 3_900_262, 4_029_250 - 3_900_262,
     '1355.0'),
    ('densenet250k24', 'densenet250k24', {}, CIFAR, 15_324_406, 15_582_382 - 15_324_406,
     '5418.8'),
    ('densenet190k40', 'densenet190k40', {}, CIFAR, 25_624_430, 25_881_390 - 25_624_430,
     '9301.9'),
    # Seed B's DenseNet-BC-100-12 on Fashion-MNIST (SPEC §6.2), PyTorch conventions.
    ('densenet100k12_seed_b', 'densenet100k12', {'convention': 'torch'}, FASHION, 768_730,
     23_988, None),
    ('mobilenetv2_96px', 'mobilenetv2', {'upsample': 3}, CIFAR, 2_236_682, 34_112, '55.02'),
    ('mobilenetv2_192px', 'mobilenetv2', {'upsample': 6}, CIFAR, 2_236_682, 34_112, '220.05'),
    # Seed B (SPEC §6): params are SPEC's; batch_stats and MACs are hand counts.
    ('wrn28_10', 'wrn28_10', {}, FASHION, *_wrn_by_hand(28, 10)),
    ('wrn28_10_rgb', 'wrn28_10', {}, CIFAR, *_wrn_by_hand(28, 10, channels=3, size=32)),
    ('dpn', 'dpn', {}, FASHION, *_dpn_by_hand()),
    ('shake_shake26_2x96d', 'shake_shake26_2x96d', {}, FASHION, *_shake_shake_by_hand(26, 96)),
    ('shake_shake26_2x64d', 'shake_shake26_2x64d', {}, FASHION, *_shake_shake_by_hand(26, 64)),
]


def test_every_seed_row_is_a_registered_model():
  # The planned families check their exact counts in their own test files; every registered
  # model is in the zoo table (test_zoo_table_covers_every_model...).
  assert {row[1] for row in ROWS} <= set(list_models())


@pytest.mark.parametrize('row', ROWS, ids=[row[0] for row in ROWS])
def test_counts_and_macs(row):
  _, name, overrides, shape, params, batch_stats, macs = row
  model = create_model(name, num_classes=10, **overrides)
  assert count_params(model, shape) == (params, batch_stats)
  if macs is None:
    return
  measured = count_macs(model, shape)
  if isinstance(macs, int):
    assert measured == macs
  else:
    # Exact to SPEC's printed digits (a tighter test than the 0.1% it also implies).
    printed = Decimal(macs)
    assert Decimal(measured / 1e6).quantize(printed) == printed


# One small preset per family: the MACs of the init trace (what count_macs counts) must equal
# those of the eval-mode apply, i.e. initialisers add no conv or matmul.
FAMILY_PRESETS = [
    ('resnet18', dict(stage_sizes=(1, 1), base_width=4)),
    ('resnext50_c32', dict(stage_sizes=(1, 1))),
    ('senet50', dict(stage_sizes=(1, 1), base_width=4)),
    ('densenet100k12', dict(depth=10, growth_rate=4)),
    ('mobilenetv2', dict(upsample=2, blocks=((1, 8, 1, 1), (6, 8, 2, 2)))),
    ('wrn28_10', dict(depth=10, widen=1)),
    ('dpn', dict(stage_sizes=(2, 1), filters=(8, 16), growth_rates=(2, 4))),
    ('shake_shake26_2x64d', dict(depth=8, base_width=4)),
    ('airbench94', dict(widths=(4, 8))),
    ('pyramidnet110_a48', dict(depth=8, alpha=6, shakedrop=True)),
    ('pyramidnet164_a270_bn', dict(depth=11, alpha=6)),
]


@pytest.mark.parametrize('name,overrides', FAMILY_PRESETS, ids=[p[0] for p in FAMILY_PRESETS])
def test_init_trace_counts_the_eval_forward(name, overrides):
  model = create_model(name, **overrides)
  shape = (1, 16, 16, 3)
  assert count_macs(model, shape) == eval_forward_macs(model, shape) > 0


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
    return jax.lax.cond(a[0, 0] > 0, lambda: (a @ b) @ b.T, lambda: a @ jnp.ones((3, 3)))

  assert jaxpr_macs(jax.make_jaxpr(lambda a, b: a @ b)(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(jax.jit(lambda a, b: a @ b))(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(jax.checkpoint(lambda a, b: a @ b))(a, b)) == base
  assert jaxpr_macs(jax.make_jaxpr(scanned)(a, b)) == 4 * base
  assert jaxpr_macs(jax.make_jaxpr(branched)(a, b)) == base + 2 * 5 * 3  # the larger branch
  # Batched matmul: batch 7 x (2x3 @ 3x5).
  batched = jax.make_jaxpr(jnp.matmul)(jnp.ones((7, 2, 3)), jnp.ones((7, 3, 5)))
  assert jaxpr_macs(batched) == 7 * base


# --- docs/ZOO.md's table (after the rows above, so every trace is cached by now).

@pytest.mark.slow  # traces all 58 models: ~40 s
def test_zoo_table_covers_every_model_matches_the_seeds_and_is_in_the_docs():
  assert {row.model for row in zoo.ROWS} == set(list_models())
  counted = [zoo.count(row) for row in zoo.ROWS]
  assert [c.row.label for c in counted if c.params_match is False or c.macs_match is False] == []
  assert sum(c.params_match is True for c in counted) >= 20
  doc = (pathlib.Path(__file__).resolve().parent.parent / 'docs' / 'ZOO.md').read_text()
  assert zoo.table() in doc, 'docs/ZOO.md: paste the output of `python -m jaxcls.models.zoo`'


def test_zoo_match_reads_the_printed_precision():
  assert zoo._matches(15_324_406, '15.3M') and not zoo._matches(15_374_406, '15.3M')
  assert zoo._matches(1_327_226, '1,327,226') and not zoo._matches(1_327_227, '1,327,226')
  assert zoo._matches(72_401_920, '72.40', scale=1e6)
  assert not zoo._matches(72_406_000, '72.40', scale=1e6)

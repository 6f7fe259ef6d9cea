"""The zoo's count table, side by side with the seeds' published figures (docs/ZOO.md).

    python -m jaxcls.models.zoo > /tmp/table.md

Each row counts a registered model with `count_params` and `count_macs` (one cached trace of the
eval-mode init, batch 1) and compares with the figure its seed printed:
- seed A (Keras) prints `count_params()`, the TOTAL with BN moving statistics, except
  ResNet50b's trainable-only 1,309,210; its DenseNet250k24/190k40 figures are the DenseNet
  paper's trainable counts (SPEC §0). Seed B (PyTorch) prints trainable parameters only.
- seed A's "FLOPs/2" is the conv + Dense multiply-accumulates at 32x32x3 (SPEC §0).
- PyramidNet's rows (CIFAR form, 10 or 100 classes) compare with imgclsmob's trainable counts
  (`pyramidnet_cifar.py`, BN scale and bias counted).
A figure printed with fewer digits ("15.3M") matches when the count rounds to it. The planned
families' rows compare their ImageNet forms (`stem='imagenet'`, 1000 classes) with timm's and
torchvision's published params and batch statistics.
"""

import dataclasses
from decimal import Decimal
from typing import Any, Optional

from jaxcls.models.macs import count_macs, count_params
from jaxcls.models.registry import create_model

CIFAR = (1, 32, 32, 3)
FASHION = (1, 28, 28, 1)
IMAGENET = (1, 224, 224, 3)
IMAGENET_299 = (1, 299, 299, 3)  # the Inceptions' and Xception's ImageNet input
IMAGENET_FORM = (('stem', 'imagenet'),)
# EfficientNet-B1..B7: (B, ImageNet resolution, CIFAR upsampling, torchvision's parameters).
_EFFICIENTNETS = ((1, 240, 7, '7,794,184'), (2, 260, 8, '9,109,994'), (3, 300, 9, '12,233,232'),
                  (4, 380, 11, '19,341,616'), (5, 456, 14, '30,389,784'),
                  (6, 528, 16, '43,040,704'), (7, 600, 18, '66,347,960'))


@dataclasses.dataclass(frozen=True)
class Row:
  """One table row: a model on an input, and what its seed printed for it."""
  label: str
  model: str
  input_shape: tuple[int, ...] = CIFAR
  overrides: tuple[tuple[str, Any], ...] = ()
  num_classes: int = 10
  # Who printed the published figure: seed A's table ('A'), seed A's 2021 README ('A 2021'),
  # seed B ('B'), a paper ('paper'), a reference implementation ('timm', 'torchvision',
  # 'imgclsmob'), or nobody ('').
  source: str = ''
  published_params: Optional[str] = None  # as printed: '1,327,226' or '15.3M'
  counted_as: str = 'total'  # which of our counts the seed printed: total | params
  published_macs: Optional[str] = None  # FLOPs/2 in millions, as printed
  # BN running statistics (mean + var) as printed by the reference, where it gives them; the
  # params match then also needs this one to match.
  published_batch_stats: Optional[str] = None


ROWS = (
    Row('ResNet18 (not in the seeds)', 'resnet18'),
    Row('ResNet34', 'resnet34', source='A', published_params='1,327,226',
        published_macs='72.40'),
    Row('ResNet35b', 'resnet35b', source='A', published_params='873,722', published_macs='51.83'),
    Row('ResNet50b', 'resnet50b', source='A', published_params='1,309,210', counted_as='params',
        published_macs='74.11'),
    Row('ResNet101b', 'resnet101b', source='A', published_params='2,530,426',
        published_macs='149.87'),
    Row('ResNet152b', 'resnet152b', source='A', published_params='3,528,314',
        published_macs='225.63'),
    Row('ResNet170b', 'resnet170b', source='A', published_params='4,414,202',
        published_macs='252.37'),
    Row('WideResNet18', 'wideresnet18', source='A', published_params='11,205,578',
        published_macs='609.96'),
    Row('ResNeXt50-C32', 'resnext50_c32'),
    Row('ResNeXt101-C32', 'resnext101_c32'),
    Row('ResNeXt152-C32 (no seed row)', 'resnext152_c32'),
    Row('SeNet35 (no seed row)', 'senet35', source='A 2021', published_params='0.98M'),
    Row('SeNet50', 'senet50', source='A 2021', published_params='1.5M'),
    Row('SeNet101', 'senet101', source='A 2021', published_params='2.8M'),
    Row('SeNet152 (no seed row)', 'senet152', source='A 2021', published_params='3.95M'),
    Row('DenseNet100k12', 'densenet100k12', source='A 2021', published_params='0.79M'),
    Row('DenseNet100k16', 'densenet100k16', source='A 2021', published_params='1.4M'),
    Row('DenseNet160k12', 'densenet160k12', source='A 2021', published_params='1.8M'),
    Row('DenseNet250k12', 'densenet250k12'),
    Row('DenseNet250k24', 'densenet250k24', source='A (paper)', published_params='15.3M',
        counted_as='params'),
    Row('DenseNet190k40', 'densenet190k40', source='A (paper)', published_params='25.6M',
        counted_as='params'),
    Row('ResNet35b-IBN-a', 'resnet35b_ibn_a'),
    Row('ResNet50b-IBN-a', 'resnet50b_ibn_a'),
    Row('ResNet101b-IBN-a', 'resnet101b_ibn_a'),
    Row('MobileNetV2 96 px', 'mobilenetv2', overrides=(('upsample', 3),), source='A 2021',
        published_params='2.3M'),
    Row('MobileNetV2 192 px', 'mobilenetv2', overrides=(('upsample', 6),)),
    Row('WRN-28-10', 'wrn28_10', FASHION, source='B', published_params='36,478,906',
        counted_as='params'),
    Row('WRN-28-10 on RGB 32x32', 'wrn28_10', source='paper', published_params='36,479,194',
        counted_as='params'),
    Row('DenseNet-BC-100 k=12', 'densenet100k12', FASHION, (('convention', 'torch'),),
        source='B', published_params='768,730', counted_as='params'),
    Row('DPN', 'dpn', FASHION, source='B', published_params='47,751,450', counted_as='params'),
    Row('Shake-Shake-26 2x96d', 'shake_shake26_2x96d', FASHION, source='B',
        published_params='26,330,026', counted_as='params'),
    Row('Shake-Shake-26 2x64d', 'shake_shake26_2x64d', FASHION, source='B',
        published_params='11,708,362', counted_as='params'),
    # Planned families (SPEC §11): the CIFAR form, then the ImageNet form against its reference.
    Row('ResNeSt-50d, CIFAR stem', 'resnest50d'),
    Row('ResNeSt-50d', 'resnest50d', IMAGENET, IMAGENET_FORM, num_classes=1000,
        source='timm', published_params='27,483,240', counted_as='params',
        published_batch_stats='64,576'),
    Row('TResNet-M 96 px (seed A\'s CIFAR form)', 'tresnet_m', source='A 2021',
        published_params='3.2M'),
    Row('TResNet-M', 'tresnet_m', IMAGENET, IMAGENET_FORM, num_classes=1000,
        source='timm', published_params='31,389,032', counted_as='params',
        published_batch_stats='61,568'),
    Row('ResNet-50-IBN-a, CIFAR stem', 'resnet50_ibn_a'),
    Row('ResNet-50-IBN-a', 'resnet50_ibn_a', IMAGENET, IMAGENET_FORM, num_classes=1000,
        source='torchvision', published_params='25,557,032', counted_as='params'),
    Row('PyramidNet-110 α48', 'pyramidnet110_a48', source='imgclsmob',
        published_params='1,772,706', counted_as='params'),
    Row('PyramidNet-110 α48', 'pyramidnet110_a48', num_classes=100, source='imgclsmob',
        published_params='1,778,556', counted_as='params'),
    Row('PyramidNet-110 α84', 'pyramidnet110_a84', source='imgclsmob',
        published_params='3,904,446', counted_as='params'),
    Row('PyramidNet-110 α270', 'pyramidnet110_a270', source='imgclsmob',
        published_params='28,485,477', counted_as='params'),
    Row('PyramidNet-164 α270 (bottleneck)', 'pyramidnet164_a270_bn', source='imgclsmob',
        published_params='27,216,021', counted_as='params'),
    Row('PyramidNet-200 α240 (bottleneck)', 'pyramidnet200_a240_bn', source='imgclsmob',
        published_params='26,752,702', counted_as='params'),
    Row('PyramidNet-236 α220 (bottleneck)', 'pyramidnet236_a220_bn', source='imgclsmob',
        published_params='26,969,046', counted_as='params'),
    Row('PyramidNet-272 α200 (bottleneck)', 'pyramidnet272_a200_bn', source='imgclsmob',
        published_params='26,210,842', counted_as='params'),
    Row('PyramidNet-272 α200 (bottleneck)', 'pyramidnet272_a200_bn', num_classes=100,
        source='imgclsmob', published_params='26,288,692', counted_as='params'),
    Row('EfficientNet-B0 224 px (x7)', 'efficientnet_b0'),
    Row('EfficientNet-B0 ImageNet', 'efficientnet_b0', IMAGENET, IMAGENET_FORM, 1000,
        source='timm', published_params='5,288,548', counted_as='params',
        published_batch_stats='42,016'),
    *(row for b, resolution, upsample, published in _EFFICIENTNETS for row in (
        Row(f'EfficientNet-B{b} {32 * upsample} px (x{upsample})', f'efficientnet_b{b}'),
        Row(f'EfficientNet-B{b} ImageNet {resolution} px', f'efficientnet_b{b}',
            (1, resolution, resolution, 3), IMAGENET_FORM, 1000, source='torchvision',
            published_params=published, counted_as='params'))),
    Row('MobileNetV3-Large 224 px (x7)', 'mobilenetv3_large'),
    Row('MobileNetV3-Large ImageNet', 'mobilenetv3_large', IMAGENET, IMAGENET_FORM, 1000,
        source='timm', published_params='5,483,032', counted_as='params',
        published_batch_stats='24,400'),
    Row('MobileNetV3-Small 224 px (x7)', 'mobilenetv3_small'),
    Row('MobileNetV3-Small ImageNet', 'mobilenetv3_small', IMAGENET, IMAGENET_FORM, 1000,
        source='timm', published_params='2,542,856', counted_as='params',
        published_batch_stats='12,112'),
    Row('NAT-M1 C10 subnet 224 px (paper: 392 MFLOPs)', 'nat_m1'),
    Row('NAT-M2 C10 subnet 224 px (paper: 468 MFLOPs)', 'nat_m2'),
    Row('Inception-v3 (CIFAR form)', 'inception_v3'),
    Row('Inception-v3 (no aux head)', 'inception_v3', IMAGENET_299, IMAGENET_FORM,
        num_classes=1000, source='torchvision', published_params='23,834,568',
        counted_as='params', published_batch_stats='34,432'),
    Row('Inception-v4 (CIFAR form)', 'inception_v4'),
    Row('Inception-v4', 'inception_v4', IMAGENET_299, IMAGENET_FORM, num_classes=1000,
        source='timm', published_params='42,679,816', counted_as='params',
        published_batch_stats='63,168'),
    Row('Xception (CIFAR form)', 'xception'),
    Row('Xception (legacy_xception)', 'xception', IMAGENET_299, IMAGENET_FORM,
        num_classes=1000, source='timm', published_params='22,855,952', counted_as='params',
        published_batch_stats='54,528'),
    Row('airbench94 (Jordan 2024; not in the seeds)', 'airbench94'),
)


def _matches(count: int, published: str, scale: float = 1.0) -> bool:
  """Whether `count` (in units of `scale`) prints as `published` at its precision."""
  if published.endswith('M'):
    printed = Decimal(published[:-1])
    return Decimal(count / 1e6 / scale).quantize(printed) == printed
  printed = Decimal(published.replace(',', ''))
  return Decimal(count / scale).quantize(printed) == printed


@dataclasses.dataclass(frozen=True)
class Counted:
  row: Row
  params: int
  batch_stats: int
  macs: int

  @property
  def total(self) -> int:
    return self.params + self.batch_stats

  @property
  def params_match(self) -> Optional[bool]:
    if self.row.published_params is None:
      return None
    count = self.params if self.row.counted_as == 'params' else self.total
    stats = self.row.published_batch_stats
    return _matches(count, self.row.published_params) and (
        stats is None or _matches(self.batch_stats, stats))

  @property
  def macs_match(self) -> Optional[bool]:
    if self.row.published_macs is None:
      return None
    return _matches(self.macs, self.row.published_macs, scale=1e6)


def count(row: Row) -> Counted:
  model = create_model(row.model, num_classes=row.num_classes, **dict(row.overrides))
  params, batch_stats = count_params(model, row.input_shape)
  return Counted(row, params, batch_stats, count_macs(model, row.input_shape))


def _mark(match: Optional[bool]) -> str:
  return '' if match is None else ('yes' if match else '**no**')


def table(rows: tuple[Row, ...] = ROWS) -> str:
  """The markdown table of `rows`: our counts, the seed's figures and whether they match."""
  lines = [
      '| model | registry name | input | params | batch_stats | total | MACs (M) | source | '
      'published params | compared with | match | published FLOPs/2 (M) | match |',
      '|---|---|---|--:|--:|--:|--:|---|--:|---|---|--:|---|',
  ]
  for c in map(count, rows):
    r = c.row
    name = r.model + ''.join(f', {k}={v}' for k, v in r.overrides)
    shape = 'x'.join(map(str, r.input_shape[1:]))
    if r.num_classes != 10:
      shape += f', {r.num_classes} classes'
    lines.append(
        f'| {r.label} | `{name}` | {shape} | {c.params:,} | {c.batch_stats:,} | {c.total:,} | '
        f'{c.macs / 1e6:,.2f} | {r.source} | {r.published_params or ""} | '
        f'{r.counted_as if r.published_params else ""} | {_mark(c.params_match)} | '
        f'{r.published_macs or ""} | {_mark(c.macs_match)} |')
  return '\n'.join(lines)


def registry_table(names: list[str], input_shape: tuple[int, ...] = CIFAR, num_classes: int = 10,
                   counts: bool = True, **fields: Any) -> str:
  """The markdown table of registered models `names`: family, and with `counts` their params,
  BatchNorm statistics and MACs on `input_shape` (one abstract trace each, nothing computed).
  `fields` go to every `create_model` (`stem='imagenet'`: the papers' ImageNet forms)."""
  from jaxcls.models import registry  # pylint: disable=g-import-not-at-top

  header = '| model | family |' + (' params | batch_stats | MACs (M) |' if counts else '')
  lines = [header, '|---|---|' + ('--:|--:|--:|' if counts else '')]
  for name in names:
    model = create_model(name, num_classes=num_classes, **fields)
    row = f'| `{name}` | {type(model).__name__} ({registry.model_family(name)}) |'
    if counts:
      params, batch_stats = count_params(model, input_shape)
      row += f' {params:,} | {batch_stats:,} | {count_macs(model, input_shape) / 1e6:,.2f} |'
    lines.append(row)
  return '\n'.join(lines)


if __name__ == '__main__':
  print(table())

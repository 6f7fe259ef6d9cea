r"""PyTorch twins of two jaxcls models and their train step: the device suite's yardstick.

    python benchmarks/torch_twins.py --model resnet50b --batch-size 1024 [--steps 20]

The twins are built layer for layer as jaxcls builds them, so that the jaxcls/PyTorch ratio
compares frameworks, not networks; `twin_facts` checks that each twin's parameter count equals
jaxcls's and that its conv + Linear FLOPs (torch's FlopCounterMode, batch 1) are twice our MAC
count:
- `resnet50b`: seed A's pre-activation bottleneck ResNet (`jaxcls.models.resnet_v2`): a bare 3x3
  stem, units BN-ReLU-conv 1x1 -> BN-ReLU-conv 3x3 (stride here, TF SAME padding) ->
  BN-ReLU-conv 1x1 (x4), parameter-free shortcuts (AvgPool 2x2, channel zero-pad), head
  BN-ReLU-GAP-Linear; Keras BatchNorm (momentum 0.99, eps 1e-3). 1,309,210 params on 32x32x3.
- `wrn28_10`: WRN-28-10 (`jaxcls.models.wrn`): blocks BN-ReLU-conv 3x3 (stride, padding 1) ->
  BN-ReLU-conv 3x3, the activated input to a 1x1 projection where the width changes; PyTorch
  BatchNorm. 36,478,906 params on Fashion-MNIST's 28x28x1.

The train step does the work of `jaxcls.train.make_train_fn` with the config's augmentation:
gather the batch by index from the whole uint8 dataset on the device, pad-and-crop and flip,
normalise, forward under bf16 autocast in channels_last, cross-entropy, backward, and a fused
SGD step (Nesterov momentum 0.9, weight decay on every parameter). The model and the
augmentation go through `torch.compile` (a CUDA device only: on a CPU, inductor would need a C++
compiler, and the dry run only checks that everything runs). Timing as in `throughput.py`: the
median over windows of `window` steps, each window synced once.

PyTorch is needed here only; jaxcls never imports this file.
"""

import argparse
import dataclasses
import json
import statistics
import time
from typing import Any, Optional

import torch
from torch import nn
from torch.nn import functional as F

TWINS = ('resnet50b', 'wrn28_10')


class SameConv2d(nn.Conv2d):
  """A bias-free conv padded as TF's SAME: (total // 2, total - total // 2) per axis, so a
  stride-2 3x3 conv on an even size pads (0, 1) as Flax's `padding='SAME'` does."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    pads = []
    for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
      total = max((-(-size // s) - 1) * s + k - size, 0)
      pads += [total // 2, total - total // 2]
    return super().forward(F.pad(x, pads))


def _batch_norm(channels: int, convention: str) -> nn.BatchNorm2d:
  # Flax momentum m keeps m of the old statistic; torch's momentum is the new one's weight.
  momentum, eps = {'keras': (0.99, 1e-3), 'torch': (0.9, 1e-5)}[convention]
  return nn.BatchNorm2d(channels, eps=eps, momentum=1 - momentum)


def _pad_shortcut(x: torch.Tensor, channels: int, stride: int) -> torch.Tensor:
  """jaxcls `layers.pad_shortcut`: AvgPool when strided (SAME, real pixels only), then a
  symmetric zero-pad of the channels (NCHW)."""
  if stride > 1:
    x = F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)
  extra = channels - x.shape[1]
  return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2)) if extra else x


class PreActBottleneck(nn.Module):
  """jaxcls `resnet_v2.BottleneckUnit` (no SE, cardinality 1, no stochastic depth)."""

  def __init__(self, in_channels: int, features: int, stride: int, expansion: int = 4):
    super().__init__()
    self.out_channels, self.stride = features * expansion, stride
    self.bn1 = _batch_norm(in_channels, 'keras')
    self.conv1 = SameConv2d(in_channels, features, 1, bias=False)
    self.bn2 = _batch_norm(features, 'keras')
    self.conv2 = SameConv2d(features, features, 3, stride, bias=False)
    self.bn3 = _batch_norm(features, 'keras')
    self.conv3 = SameConv2d(features, self.out_channels, 1, bias=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.conv1(F.relu(self.bn1(x)))
    y = self.conv2(F.relu(self.bn2(y)))
    y = self.conv3(F.relu(self.bn3(y)))
    return _pad_shortcut(x, self.out_channels, self.stride) + y


class _PreActNet(nn.Module):
  """stem -> body -> BN-ReLU-GAP-Linear head, the shape both twins share."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(self.head_norm(self.body(self.stem(x))))
    return self.head(x.mean((2, 3)))


class ResNetV2Twin(_PreActNet):
  """jaxcls `resnet_v2.ResNetV2` with bottleneck units (resnet50b: stage_sizes 3,4,6,3)."""

  def __init__(self, stage_sizes=(3, 4, 6, 3), base_width: int = 16, in_channels: int = 3,
               num_classes: int = 10, expansion: int = 4):
    super().__init__()
    self.stem = SameConv2d(in_channels, base_width, 3, bias=False)
    units, channels = [], base_width
    for i, num_units in enumerate(stage_sizes):
      for j in range(num_units):
        units.append(PreActBottleneck(channels, base_width * 2**i, 2 if i > 0 and j == 0 else 1,
                                      expansion))
        channels = units[-1].out_channels
    self.body = nn.Sequential(*units)
    self.head_norm = _batch_norm(channels, 'keras')
    self.head = nn.Linear(channels, num_classes)


class WideBasicTwin(nn.Module):
  """jaxcls `wrn.WideBasic` (no dropout)."""

  def __init__(self, in_channels: int, features: int, stride: int):
    super().__init__()
    self.bn1 = _batch_norm(in_channels, 'torch')
    self.conv1 = nn.Conv2d(in_channels, features, 3, stride, padding=1, bias=False)
    self.bn2 = _batch_norm(features, 'torch')
    self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=False)
    self.shortcut = (None if in_channels == features and stride == 1 else
                     nn.Conv2d(in_channels, features, 1, stride, bias=False))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    a = F.relu(self.bn1(x))
    y = self.conv2(F.relu(self.bn2(self.conv1(a))))
    return (x if self.shortcut is None else self.shortcut(a)) + y


class WideResNetTwin(_PreActNet):
  """jaxcls `wrn.WideResNet` (WRN-depth-widen)."""

  def __init__(self, depth: int = 28, widen: int = 10, in_channels: int = 1,
               num_classes: int = 10):
    super().__init__()
    self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
    blocks, channels = [], 16
    for i in range(3):
      for j in range((depth - 4) // 6):
        blocks.append(WideBasicTwin(channels, 16 * widen * 2**i, 2 if i > 0 and j == 0 else 1))
        channels = 16 * widen * 2**i
    self.body = nn.Sequential(*blocks)
    self.head_norm = _batch_norm(channels, 'torch')
    self.head = nn.Linear(channels, num_classes)


def build(model: str, image_shape: tuple[int, int, int], num_classes: int = 10,
          **fields: Any) -> nn.Module:
  """The twin of jaxcls model `model` for `image_shape` (HWC); `fields` as in `create_model`
  (stage_sizes and base_width for resnet50b, depth and widen for wrn28_10)."""
  in_channels = image_shape[-1]
  if model == 'resnet50b':
    return ResNetV2Twin(in_channels=in_channels, num_classes=num_classes, **fields)
  if model == 'wrn28_10':
    return WideResNetTwin(in_channels=in_channels, num_classes=num_classes, **fields)
  raise ValueError(f'no PyTorch twin of {model!r}; twins: {", ".join(TWINS)}')


def twin_facts(twin: nn.Module, image_shape: tuple[int, int, int]) -> dict[str, int]:
  """`params` and forward conv + Linear `flops` at batch 1 (FlopCounterMode, 2 per MAC)."""
  from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top

  height, width, channels = image_shape
  twin = twin.eval()
  with torch.no_grad(), FlopCounterMode(display=False) as counter:
    twin(torch.zeros(1, channels, height, width))
  return {'params': sum(p.numel() for p in twin.parameters()),
          'flops': counter.get_total_flops()}


@dataclasses.dataclass
class Augment:
  """The config's augmentation: crop padding (zero or symmetric pad), flip, mean/std (0-255)."""
  crop_padding: int
  pad_mode: str  # zero | symmetric
  flip: bool
  mean: tuple[float, ...]
  std: tuple[float, ...]


def make_augment(augment: Augment):
  """`augment(images uint8 NHWC) -> float NCHW`: pad-and-crop, flip, normalise, on the device."""
  mode = {'zero': 'constant', 'symmetric': 'replicate', 'reflect': 'reflect'}[augment.pad_mode]
  # 'replicate' repeats the edge pixel, TF SYMMETRIC's first padded pixel; for padding 4 they
  # differ in the pixels further out, which a speed measurement does not notice.

  def apply(images: torch.Tensor) -> torch.Tensor:
    n, height, width, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    p = augment.crop_padding
    if p:
      x = F.pad(x, (p, p, p, p), mode=mode)
      oy = torch.randint(0, 2 * p + 1, (n, 1), device=x.device)
      ox = torch.randint(0, 2 * p + 1, (n, 1), device=x.device)
      rows = (oy + torch.arange(height, device=x.device))[:, None, :, None]
      cols = (ox + torch.arange(width, device=x.device))[:, None, None, :]
      batch = torch.arange(n, device=x.device)[:, None, None, None]
      chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
      x = x[batch, chans, rows, cols]
    if augment.flip:
      flip = torch.rand(n, 1, 1, 1, device=x.device) < 0.5
      x = torch.where(flip, x.flip(3), x)
    mean = torch.tensor(augment.mean, device=x.device)[None, :, None, None]
    std = torch.tensor(augment.std, device=x.device)[None, :, None, None]
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)

  return apply


def measure(model: str, *, batch_size: int, image_shape: tuple[int, int, int],
            augment: Augment, num_classes: int = 10, steps: int = 20, warmup: int = 3,
            window: int = 5, compile_model: Optional[bool] = None, lr: float = 0.1,
            weight_decay: float = 5e-4, dataset_batches: int = 8,
            **fields: Any) -> dict[str, Any]:
  """Times `steps` train steps of the twin of `model` on random uint8 data; the result dict.

  `compile_model` defaults to True on CUDA, False elsewhere.
  """
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  compile_model = device.type == 'cuda' if compile_model is None else compile_model
  torch.manual_seed(0)
  twin = build(model, image_shape, num_classes, **fields)
  facts = twin_facts(twin, image_shape)
  twin = twin.to(device, memory_format=torch.channels_last).train()
  optimizer = torch.optim.SGD(twin.parameters(), lr=lr, momentum=0.9, nesterov=True,
                              weight_decay=weight_decay,
                              **({'fused': True} if device.type == 'cuda' else {}))
  n = dataset_batches * batch_size
  images = torch.randint(0, 256, (n, *image_shape), dtype=torch.uint8, device=device)
  labels = torch.randint(0, num_classes, (n,), device=device)
  augment_fn = make_augment(augment)
  forward = twin
  if compile_model:
    forward, augment_fn = torch.compile(twin), torch.compile(augment_fn)

  order = torch.randperm(n, device=device)

  def step(i: int) -> torch.Tensor:
    nonlocal order
    if i and i % dataset_batches == 0:  # a new epoch of the synthetic dataset
      order = torch.randperm(n, device=device)
    index = order[(i % dataset_batches) * batch_size:][:batch_size]
    x = augment_fn(images[index])
    with torch.autocast(device.type, dtype=torch.bfloat16):
      loss = F.cross_entropy(forward(x).float(), labels[index])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss

  sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
  start = time.perf_counter()
  step(0)
  sync()
  first_s = time.perf_counter() - start  # compile + first step
  for i in range(1, warmup):
    step(i)
  sync()
  times, done = [], warmup
  while done < warmup + steps:
    count = min(window, warmup + steps - done)
    start = time.perf_counter()
    for i in range(count):
      step(done + i)
    sync()
    times.append((time.perf_counter() - start) / count)
    done += count
  step_s = statistics.median(times)
  return {
      'benchmark': 'torch_twin', 'model': model, 'batch_size': batch_size,
      'dtype': 'bfloat16 autocast', 'channels_last': True, 'compiled': compile_model,
      'images_per_sec': batch_size / step_s, 'step_s': step_s, 'step_s_min': min(times),
      'step_s_max': max(times), 'timed_steps': steps, 'first_call_s': first_s,
      'twin_params': facts['params'], 'twin_flops_per_image': facts['flops'],
      'torch_version': torch.__version__,
      'device': (torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'),
  }


def main(argv=None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', choices=TWINS, required=True)
  parser.add_argument('--batch-size', type=int, default=1024)
  parser.add_argument('--steps', type=int, default=20)
  args = parser.parse_args(argv)
  shape = (32, 32, 3) if args.model == 'resnet50b' else (28, 28, 1)
  augment = Augment(4, 'zero', True, (127.5,) * shape[-1], (64.0,) * shape[-1])
  result = measure(args.model, batch_size=args.batch_size, image_shape=shape, augment=augment,
                   steps=args.steps)
  print(json.dumps(result), flush=True)
  return result


if __name__ == '__main__':
  main()

r"""airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv 2404.00498;
github.com/KellerJordan/cifar10-airbench): the fastest published CIFAR-10 recipe to 94%.

    python main.py --config configs/airbench94.py --workdir runs/airbench94
    python benchmarks/time_to_accuracy.py --config configs/airbench94.py --seeds 5

Published (PyTorch, one NVIDIA A100-SXM4-80GB): 94.01% mean test accuracy over 1,000 runs in
3.83 s (airbench94.py; 3.29 s with torch.compile), 3.6e14 FLOPs, timing the whitening init, the
training and the final TTA evaluation, not the warm-up/compilation. On the CIFAR-10 JPEG copy
(`--config.dataset.source=folder --config.dataset.path=../shared/data/cifar10-jpeg.zip`)
expect a point or two less; docs/RESULTS.md has what we measured.

The recipe, as the paper and its code define it:
- Network `airbench94` (jaxcls/models/airbench.py): frozen 2x2 whitening conv from the data,
  three conv groups 64/256/256 with scale-free BatchNorm, GELU, logits x 1/9.
- Batch 1024 for 9.9 epochs (476 steps; each epoch drops its last partial batch).
- Cross-entropy with label smoothing 0.2, SUMMED over the batch; Nesterov SGD, momentum 0.85.
  airbench states its hyperparameters per 1024 examples with the momentum factored out
  (lr 11.5, weight decay 0.0153); for torch's SGD on the summed loss that is lr = 11.5 / k and
  a decay step of 0.0153 * 1024 / k, k = 1024 * (1 + 1 / (1 - momentum)) = 7850.7. Each
  parameter group's (coupled) weight decay is that step divided by its lr, so BatchNorm biases,
  trained at 64x the lr, decay at the same rate as the rest.
- The whitening conv's bias trains for the first 3 epochs only; its filters never.
- lr: 0.2 -> 1.0 of the peak over the first 23% of steps, then linearly to 0.07.
- Lookahead every 5 steps: average <- lerp(average, weights, 1 - alpha), weights <- average,
  alpha = 0.95^5 * (t / T)^3, BatchNorm statistics included; the last step ends on the average.
- Data: per-channel normalisation (the train split's statistics), alternating flip (a random
  half mirrored in epoch 0, then the whole set mirrored on odd epochs), random translation by up
  to 2 pixels with reflect padding.
- Evaluation: test-time augmentation over 6 views (image and mirror, averaged; plus the
  mirror-averages of the two 1-pixel diagonal shifts, weighted 0.5 / 0.5).

Variant `:cpu`: the same recipe sized for a 2-core CPU (`cpu_variant` says how and why), more
accurate than `configs/resnet18.py` there in less wall time (docs/RESULTS.md, side by side):
    python benchmarks/time_to_accuracy.py --config configs/airbench94.py:cpu --seeds 1 \
      --config.dataset.source=folder --config.dataset.path=../shared/data/cifar10-jpeg.zip
"""

from configs import default

# airbench's decoupled hyperparameters (per 1024 examples; momentum factored out of the lr).
LR = 11.5
WEIGHT_DECAY = 0.0153
MOMENTUM = 0.85
BIAS_SCALER = 64.0  # BatchNorm biases' lr multiplier


def set_optimizer(config, batch_size: int, lr: float = LR, weight_decay: float = WEIGHT_DECAY,
                  momentum: float = MOMENTUM) -> None:
  """airbench's SGD on the summed loss at `batch_size`: torch's lr and per-group decay."""
  kilostep = 1024 * (1 + 1 / (1 - momentum))  # 7850.7 at momentum 0.85
  config.batch_size = batch_size
  config.optim.momentum = momentum
  config.optim.nesterov = True
  config.optim.lr = lr / kilostep
  # torch's weight_decay = (decay step) / lr in every group: wd_mult undoes the lr_mult.
  config.optim.weight_decay = weight_decay * batch_size / kilostep / config.optim.lr
  config.optim.weight_decay_on = 'all'  # the frozen whitening filters never decay
  config.optim.param_groups.bn_bias = dict(kind='bn_bias', lr_mult=BIAS_SCALER,
                                           wd_mult=1 / BIAS_SCALER)
  config.optim.param_groups.whitening_bias = dict(path='whiten/bias', until_epoch=3.0)


def get_config(arg=None):
  variants = default.parse_variants(arg, ('cpu',), 'configs/airbench94.py')
  config = default.get_config()
  config.model.name = 'airbench94'
  config.dataset.name = 'cifar10'
  config.num_epochs = 9.9
  set_optimizer(config, batch_size=1024)
  config.label_smoothing = 0.2
  config.loss_reduction = 'sum'
  config.schedule.name = 'piecewise_linear'
  config.schedule.knots = ((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))
  config.augment.translate = 2  # pixels, reflect padding
  config.augment.flip = 'alternating'
  config.ema.mode = 'lookahead'
  config.ema.decay = 0.95
  config.ema.every = 5
  config.eval.tta = 'flip_translate'
  config.eval_batch_size = 2000
  config.eval_every_epochs = 1
  config.log_every_steps = 16
  if 'cpu' in variants:
    cpu_variant(config)
  return config


def cpu_variant(config) -> None:
  """airbench94 at half width (32/128/128 channels, a quarter of the MACs: 30M) and batch 128
  for a 2-core CPU, evaluated at epoch 5 and at the end only (each TTA eval is six passes).

  Why these: XLA:CPU runs few-channel high-resolution weight gradients slowly and small batches
  per image faster than large ones; on train[:10000] for 4 epochs, half width at stride 1 beat
  full width with a stride-2 whitening stem (70.2% against 68.2%, at 1.3x its images/s), and
  both beat ResNet18 (56.1%). Batch 128 gives the 10 epochs 8x the steps of batch 1024; the
  hyperparameters are airbench's per-example ones, so they carry over (`set_optimizer`).
  """
  config.model.widths = (32, 128, 128)
  set_optimizer(config, batch_size=128)
  config.eval_every_epochs = 5
  config.eval_batch_size = 1000
  config.log_every_steps = 100

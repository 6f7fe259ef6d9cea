"""Base config: every field a run reads, with its default.

Recipe files import this and override what their row needs; any field can be overridden on the
command line (`--config.optim.lr=0.2`). Fields whose default is `placeholder(type)` are optional:
`None` means "the model's (or the dataset's) own default". Each comment gives the field's range;
`jaxcls.config_checks` refuses a value outside it (NaN and infinities included) before any data
is read, and the registry checks the model's own fields for every family. Paths may start with
`~`.

    python main.py --config configs/default.py --workdir runs/default
"""

from typing import Optional, Sequence

import ml_collections
from ml_collections import config_dict

from jaxcls.errors import UserError


def parse_variants(arg: Optional[str], allowed: Sequence[str], config_file: str) -> list[str]:
  """`'sd,htd,cutmix'` -> `['sd', 'htd', 'cutmix']`, each checked against `allowed`."""
  variants = [v.strip() for v in (arg or '').split(',') if v.strip()]
  for v in variants:
    if v not in allowed:
      raise UserError(f"--config {config_file}:{arg}: unknown variant '{v}'; choose from: "
                      + ', '.join(allowed))
  return variants


def get_config():
  config = ml_collections.ConfigDict()

  # --- Model: `name` picks from `jaxcls.models.list_models()` (`python -m jaxcls.models` lists
  # them with their counts); every other non-None field is passed to
  # `create_model(name, num_classes, **fields)`: sizes >= 1, rates in [0, 1).
  config.model = ml_collections.ConfigDict()
  config.model.name = 'resnet18'
  config.model.dtype = 'float32'  # compute dtype; parameters and BN statistics stay float32
  config.model.activation = config_dict.placeholder(str)  # relu | mish | swish
  config.model.survival_prob = config_dict.placeholder(float)  # stochastic depth p_L, (0, 1]
  config.model.drop_path_mode = config_dict.placeholder(str)  # batch (seed A) | sample (timm)

  # --- Data: loaded once into uint8 NHWC arrays, cached decoded, kept on the device.
  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = 'cifar10'  # a TFDS name, or a label for offline sources
  config.dataset.source = 'tfds'  # tfds | folder | idx | embedded
  config.dataset.path = config_dict.placeholder(str)  # folder (dir or .zip) / idx directory
  config.dataset.data_dir = config_dict.placeholder(str)  # TFDS data_dir
  config.dataset.train_split = 'train'  # TFDS split syntax for every source
  config.dataset.eval_split = 'test'
  config.dataset.cache_dir = config_dict.placeholder(str)  # default ~/.cache/jaxcls
  # None: inferred from the source; set (>= 1), any label outside [0, num_classes) is an error.
  config.dataset.num_classes = config_dict.placeholder(int)

  # --- Augmentation, on the device inside jit. Pixels are on the 0-255 scale until normalised.
  config.augment = ml_collections.ConfigDict()
  # Per channel, in [0, 255] (std > 0); None: from the train split.
  config.augment.mean = config_dict.placeholder(tuple)
  config.augment.std = config_dict.placeholder(tuple)
  config.augment.crop_padding = 4  # pixels >= 0; 0 disables pad-and-crop
  config.augment.pad_mode = 'zero'  # zero | reflect | symmetric
  # airbench's "random translate by up to N px, reflect padding" is exactly pad-and-crop with
  # reflect padding: set, it stands for crop_padding=translate, pad_mode='reflect' (both ignored).
  config.augment.translate = config_dict.placeholder(int)  # pixels >= 0
  # none | random (each image mirrored with probability 1/2 each step) | alternating (airbench:
  # a random half of the images mirrored in epoch 0, every image's choice inverted on odd epochs;
  # per image from (seed, image index), jaxcls/data/augment.py)
  config.augment.flip = 'random'
  config.augment.cutout_size = 0  # pixels >= 0; 0 disables Cutout
  config.augment.cutout_prob = 1.0  # [0, 1]
  config.augment.cutout_inside = False  # True keeps the whole square inside the image

  # --- Mixing of samples and labels.
  config.mix = ml_collections.ConfigDict()
  config.mix.name = 'none'  # none | mixup | cutmix | patchup_hard | patchup_soft
  config.mix.alpha = 1.0  # > 0; lambda ~ Beta(alpha, alpha), one per sample
  config.mix.prob = 1.0  # [0, 1]: probability that a sample is mixed
  config.mix.cutmix_box = 'center'  # center (the paper) | corner (seed A: corner uniform)
  # PatchUp (Faramarzi et al. 2020; jaxcls/models/patchup.py), for ResNetV2/ResNeXt/SE-Net, WRN,
  # PyramidNet and Shake-Shake: per batch, at one point drawn from 0 (the input, where it is
  # CutMix) .. patchup_blocks (the features entering that stage; 1: the stem's output), b x b
  # blocks of features are swapped with (hard) or mixed into (soft, lam ~ Beta(2, 2)) a
  # partner's; targets are reweighted by the changed fraction; patched steps weigh 2 in the loss.
  # [0, 1] per batch; None: hard 0.7, soft 1.0.
  config.mix.patchup_prob = config_dict.placeholder(float)
  # [0, 1]: the fraction of features to change (DropBlock's gamma); None: hard 0.5, soft 0.75.
  config.mix.patchup_gamma = config_dict.placeholder(float)
  config.mix.patchup_block_size = 7  # b >= 1, odd, in features of the chosen map
  config.mix.patchup_blocks = 2  # k >= 0: the candidate points are 0..k
  config.label_smoothing = 0.0  # [0, 1)
  # The loss of a batch: the mean of its examples' cross-entropies, or their sum (airbench94;
  # the lr then scales with the batch size). Logged train_loss is the per-example mean either way.
  config.loss_reduction = 'mean'  # mean | sum

  # --- Optimisation: SGD with momentum; weight decay is coupled (added to the gradient).
  # Counts (batch sizes, epochs, steps, checkpoints) are positive integers below 2**31.
  config.batch_size = 128  # global, over all devices
  config.eval_batch_size = 500
  # > 0, may be fractional: the run is ceil(num_epochs * steps_per_epoch) steps, each epoch
  # dropping its last partial batch (airbench94: 9.9 epochs of 48 batches of 1024 = 476 steps).
  config.num_epochs = 15.0
  config.seed = 0  # [0, 2**32): JAX random keys keep 32 bits
  config.optim = ml_collections.ConfigDict()
  config.optim.lr = 0.1  # >= 0
  config.optim.momentum = 0.9  # [0, 1); 0 turns momentum off
  config.optim.nesterov = True
  # Gradient term weight_decay * w (>= 0). Keras `l2(c)` in the loss equals weight_decay = 2c.
  config.optim.weight_decay = 5e-4
  config.optim.weight_decay_on = 'all'  # all (PyTorch) | conv_kernels (Keras seed A) | kernels
  # Parameter groups, PyTorch's param_groups (jaxcls/optim.py): each named group selects leaves
  # by `path` (a regex searched in the '/'-joined path, e.g. 'Conv_0/bias') and/or `kind`
  # (kernel | conv_kernel | bias | bn_bias | bn_scale; bn_* are the scale and bias of modules
  # without a kernel, i.e. normalisation layers), and sets `lr_mult` (x lr), `wd_mult`
  # (x weight_decay; the decay stays coupled, so its step is lr*lr_mult*weight_decay*wd_mult*w)
  # and `until_epoch` (the group's updates stop after that many epochs; None: never). Leaves no
  # group selects have multipliers 1; a leaf in two groups is an error; lr_mult=0 freezes. E.g.
  # airbench94's BN biases at 64x the lr with the same decay step:
  #   config.optim.param_groups.bn_bias = dict(kind='bn_bias', lr_mult=64.0, wd_mult=1 / 64)
  # with optim.weight_decay = 1.996e-3 / optim.lr (torch's weight_decay = wd / lr per group).
  config.optim.param_groups = ml_collections.ConfigDict()

  config.schedule = ml_collections.ConfigDict()
  config.schedule.name = 'cosine'  # constant | step | htd | cosine | piecewise_linear
  config.schedule.warmup_epochs = 0.0  # >= 0, fewer than num_epochs: linear warm-up from 0
  config.schedule.lr_min = 0.0  # cosine and htd floor, in [0, optim.lr]
  config.schedule.milestones = (60, 120, 160)  # step: increasing 0-based epochs, lr *= factor
  config.schedule.factor = 0.2  # > 0
  config.schedule.htd_lower = -6.0  # HTD L < U
  config.schedule.htd_upper = 3.0  # HTD U
  # piecewise_linear: (fraction of all steps, multiple of optim.lr) knots, linear in between,
  # the knot at step floor(fraction * steps); airbench94: ((0, 0.2), (0.23, 1.0), (1, 0.07)).
  config.schedule.knots = ((0.0, 1.0), (1.0, 0.0))

  # --- Evaluation.
  config.eval = ml_collections.ConfigDict()
  # Test-time augmentation, logits averaged over views (jaxcls/data/augment.py): none | flip (the
  # image and its mirror, 1/2 each) | flip_translate (airbench94: 1/2 on that pair, 1/4 on the
  # pair shifted by (+1, +1) px and 1/4 on the pair shifted by (-1, -1), reflect padding).
  config.eval.tta = 'none'
  # Precise BN (Wu & Johnson 2021): before each eval, the BatchNorm statistics evaluated are the
  # exact averages of the batch means and variances over this many training batches (those the
  # next steps train on, train-time augmentation), computed with the evaluated weights; the
  # train state keeps its running averages. 0: evaluate with the running averages. More than
  # an epoch's batches means one epoch's.
  config.eval.recompute_bn_batches = 0

  # --- Weight averaging (jaxcls/averaging.py), kept in the train state and checkpointed.
  # mode 'ema': ema <- a * ema + (1 - a) * weights every `every` steps with a = decay**every,
  # BN statistics included; evaluated instead of the weights. mode 'lookahead' (airbench94):
  # the same update with a = decay**every * (t / T)**3 at step t of T, after which the weights
  # are set to the ema; after the last step too (airbench94: decay 0.95, every 5).
  config.ema = ml_collections.ConfigDict()
  config.ema.decay = 0.0  # per step; 0 disables averaging
  config.ema.mode = 'ema'  # ema | lookahead
  config.ema.every = 1  # steps between updates of the average

  # --- Loop cadence, checkpoints.
  config.log_every_steps = 50
  config.progress_every_secs = 10.0  # > 0: console progress line with steps/s and ETA
  # Hours the whole run takes on one GPU (an H200 unless the config says otherwise), as the
  # config's docstring states it; a run estimated at over 3 h on a CPU names it in its warning.
  config.expected_gpu_hours = config_dict.placeholder(float)  # > 0
  config.eval_every_epochs = 1  # >= 0; 0: only at the end
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.steps_per_dispatch = 1  # train steps per device call, unrolled (train.make_train_fn)
  # Another workdir to take weights from (its params and batch_stats, not its weight average).
  config.init_from = config_dict.placeholder(str)

  # --- Faults and scale-out (docs/SCALING.md).
  # A step whose loss or gradient is not finite: 'stop' ends the run naming the step (the last
  # good checkpoint stays); 'skip' drops that update (params, optimizer state, batch statistics,
  # weight average).
  config.nan_policy = 'stop'  # stop | skip
  # device: the train split is copied to every device and each batch gathered there (fastest);
  # host: each process gathers its rows of each batch on the host and sends only those.
  config.data_feed = 'auto'  # auto (device for one process, host for several) | device | host

  return config

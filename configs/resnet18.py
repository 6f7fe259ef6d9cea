r"""ResNet18 in seed A's pre-activation template (basic units 2,2,2,2, widths 16-128; 690,266
params, 34.65M MACs): the CPU-sized reference recipe, 15 epochs on CIFAR-10 or 10 on
Fashion-MNIST.

CIFAR-10 (TFDS by default; here the offline JPEG copy):
    python main.py --config configs/resnet18.py --workdir runs/r18_c10 \
      --config.dataset.source=folder --config.dataset.path=../shared/data/cifar10-jpeg.zip
Fashion-MNIST on seed B's split (train[:30000], eval train[30000:]+test = 40,000 images):
    python main.py --config configs/resnet18.py:fmnist --workdir runs/r18_fm \
      --config.dataset.source=idx --config.dataset.path=../shared/data/fashion_mnist

Recipe: SGD Nesterov 0.9, lr 0.1 at batch 128 with 1 warm-up epoch then cosine to 0, weight
decay 5e-4 on all parameters, label smoothing 0.1, 4-px zero-pad crop and flip, PyTorch init and
BatchNorm (momentum 0.9), so the eval statistics track a short run. Expected: >= 85% on the
CIFAR-10 JPEG copy, >= 92% on the Fashion-MNIST 40k eval (docs/RESULTS.md has the measured runs).
"""

from configs import default


def get_config(arg=None):
  variants = default.parse_variants(arg, ('fmnist',), 'configs/resnet18.py')
  config = default.get_config()
  config.model.name = 'resnet18'
  config.model.convention = 'torch'
  config.dataset.name = 'cifar10'
  config.batch_size = 128
  config.num_epochs = 15
  config.optim.lr = 0.1
  config.optim.weight_decay = 5e-4
  config.optim.weight_decay_on = 'all'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 1.0
  config.label_smoothing = 0.1
  config.augment.crop_padding = 4
  config.augment.pad_mode = 'zero'
  config.augment.flip = 'random'
  config.log_every_steps = 100
  if 'fmnist' in variants:
    config.dataset.name = 'fashion_mnist'
    config.dataset.train_split = 'train[:30000]'
    config.dataset.eval_split = 'train[30000:]+test'
    config.num_epochs = 10
  return config

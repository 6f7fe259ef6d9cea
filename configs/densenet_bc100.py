r"""Seed B's DenseNet-BC-100 (k = 12) row on Fashion-MNIST (SPEC §6.2, §7): 768,730 params.

    python main.py --config configs/densenet_bc100.py --workdir runs/densenet_bc100 \
      --config.dataset.source=idx --config.dataset.path=../shared/data/fashion_mnist

Recipe (seed B's table; shared parts in `configs/seed_b.py`): 300 epochs, batch 128, SGD lr 0.1,
momentum 0.9, Nesterov, weight decay 1e-4 on all parameters, lr x0.1 at epochs 150 and 225
(milestones 149, 224: the notebook steps at epoch + 1), seed 40000. The model is
`densenet100k12` with PyTorch conventions (new features concatenated last).

Seed B's top-1 on the 40,000-image eval split: 93.77% (the notebook's own note says 93.81%),
from what its notebook ran, i.e. `as_run` (no augmentation, no normalisation; SPEC §7). Ours:
not measured yet (a full row needs a GPU).
    configs/densenet_bc100.py         the README's recipe: crop, flip, normalisation
    configs/densenet_bc100.py:as_run  what its notebook ran: 93.77%
"""

from configs import seed_b


def get_config(arg=None):
  return seed_b.recipe(
      'densenet100k12', arg, config_file='configs/densenet_bc100.py',
      model_fields=dict(depth=100, growth_rate=12),
      num_epochs=300, batch_size=128, lr=0.1, nesterov=True, weight_decay=1e-4,
      schedule='step', milestones=(149, 224), factor=0.1, seed=40000)

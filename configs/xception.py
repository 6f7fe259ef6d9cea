r"""Xception (Chollet 2017) in its CIFAR form: a stride-1 stem and an unstrided first entry block,
then the paper's blocks: grids 32 -> 16 -> 8 (middle flow) -> 4 (exit flow)
(`jaxcls/models/xception.py`).

    python main.py --config configs/xception.py:cifar100 --workdir runs/xception_c100

Counts: 20,827,442 params (10 classes; 21,011,852 with 100) + 54,528 batch_stats, 1.36G MACs
at 32x32. `--config.model.stem=imagenet` gives the 299 px network (timm's legacy_xception:
22,855,952 params with 1000 classes).

Recipe: weiaicunzai/pytorch-cifar100's (`configs/pytorch_cifar100.py`): 200 epochs, batch 128,
SGD 0.1, momentum 0.9, weight decay 5e-4, lr x0.2 at 60/120/160, one warm-up epoch.

Published CIFAR-100 row (pytorch-cifar100's table, "xception, 21.0M params"): 25.07% top-1
error, i.e. 74.93% top-1; ours: not measured yet (a full row needs a GPU).
    configs/xception.py:cifar100   25.07% error
Its port reaches the same middle (8x8) and exit (4x4) grids by unstriding the third entry block
instead of the first, gives its shortcut convs biases and has no dropout (ours: the paper's 0.5,
`--config.model.dropout_rate=0` to drop it).
"""

from configs import pytorch_cifar100


def get_config(arg=None):
  return pytorch_cifar100.recipe('xception', arg, config_file='configs/xception.py',
                                 depth_fields={'middle_blocks': int})

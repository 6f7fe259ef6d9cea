r"""NAT's two CIFAR-10 subnets (Lu et al. 2020, Neural Architecture Transfer): MobileNetV3-style
subnets of the Once-for-All space given by their encodings (ks, e, d, r = 224, w = 1.2), on the
32x32 input upsampled x7 to r = 224 px by nearest-neighbour repetition (jaxcls/models/nat.py).

    python main.py --config configs/nat.py:m1,cutmix --workdir runs/nat_m1

Counts (10 classes, 224 px): M1 6,153,322 params + 32,576 batch_stats, 389.33M MACs; M2
6,862,186 + 36,848, 464.11M MACs. NAT names them by 392 and 468 MFLOPs; docs/ZOO.md explains
the difference (NAT's counter also counts activations).

Variants (comma-separated): m1 (default) or m2, and seed A's tags htd, cosine, cutout16,
mixup0.2, mixup1, cutmix, on seed A's recipe (`configs/seed_a.py`), since seed A lists NAT
among its planned families. The model brings dropout 0.2 before the classifier; drop connect is
off (`--config.model.drop_connect_rate=0.2` turns it on).

References: thin. NAT's figures are networks whose weights were inherited from an
ImageNet-trained supernet and fine-tuned on CIFAR-10 at 224 px, not comparable with a
from-scratch run:
    configs/nat.py:m1   98.2% (NAT, transferred)   ours: not measured yet, a row needs a GPU
    configs/nat.py:m2   98.4% (NAT, transferred)   ours: not measured yet
"""

from ml_collections import config_dict

from configs import seed_a

_FILE = 'configs/nat.py'


def get_config(arg=None):
  subnets = seed_a.exclusive_variants(
      arg, {'m1': seed_a.setter(name='nat_m1'), 'm2': seed_a.setter(name='nat_m2')}, _FILE)
  # None: the subnet's own value. Another subnet: --config.model.ks='(3, 5, ...)' etc.
  fields = {name: config_dict.placeholder(tuple) for name in ('ks', 'e', 'd')}
  fields.update(w=config_dict.placeholder(float), upsample=config_dict.placeholder(int),
                drop_connect_rate=config_dict.placeholder(float),
                dropout_rate=config_dict.placeholder(float))
  return seed_a.recipe('nat_m1', arg, config_file=_FILE, model_fields=fields,
                       exclude=('mish',), extra_variants=subnets)

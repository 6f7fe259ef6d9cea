r"""Seed B's Shake-Shake-26 2x96d row on Fashion-MNIST (SPEC §6.4, §7): 26,330,026 params.

    python main.py --config configs/shake26_96d.py --workdir runs/shake26_96d \
      --config.dataset.source=idx --config.dataset.path=../shared/data/fashion_mnist

Recipe (seed B's table; shared parts in `configs/seed_b.py`): 1800 epochs, batch 256, SGD lr 0.1,
momentum 0.9, no Nesterov, weight decay 1e-4 on all parameters, cosine to lr 0, seed 30000;
Shake-Shake-Image (forward and backward shake, one coefficient per image); Cutout 16x16 with
probability 1, centre anywhere, clipped at the borders. Other Shake-Shake modes of Gastaldi 2017:
`--config.model.shake_mode=shake-keep` (or shake-even, even-shake, even-even) and
`--config.model.shake_level=batch`. Seed B estimates ~40 h on a GTX 1080 Ti.

Seed B's top-1 on the 40,000-image eval split: 93.7275%. Its notebook is missing, so whether that
run had the README's augmentation and Cutout or, like the other notebooks, none is undetermined
(SPEC §7). Ours: not measured yet (a full row needs a GPU).
    configs/shake26_96d.py         the README's recipe: crop, flip, normalisation, Cutout 16
    configs/shake26_96d.py:as_run  the other notebooks' data path: raw pixels, no augmentation

On one H200 the whole run takes about 2.5 h at the config's dtype
(`expected_gpu_hours`: estimated from FLOPs in docs/GPU.md until measured).
"""

from configs import seed_b


def get_config(arg=None):
  config = seed_b.recipe(
      'shake_shake26_2x96d', arg, config_file='configs/shake26_96d.py',
      model_fields=dict(depth=26, base_width=96, shake_mode='shake-shake',
                        shake_level='image'),
      num_epochs=1800, batch_size=256, lr=0.1, nesterov=False, weight_decay=1e-4,
      schedule='cosine', seed=30000, cutout_size=16)
  config.expected_gpu_hours = 2.5  # one H200, from FLOPs (docs/GPU.md) until measured
  return config

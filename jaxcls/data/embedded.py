"""Data shipped inside an installed package, for runs with no files and no network.

`digits`: scikit-learn's 8x8 handwritten digits (UCI optdigits test set, 1,797 images, 10
classes), read by `sklearn.datasets.load_digits`. Pixels 0..16 are rescaled to 0..255
(`round(x * 255 / 16)`), then upsampled to 32x32x1 by NEAREST neighbour (each pixel becomes a
4x4 block), so the CIFAR-sized models run unchanged. The train/test split is fixed:
`np.random.RandomState(0).permutation(1797)`, train = its first 1,437 indices, test = the last
360.
"""

from typing import Any

import numpy as np

from jaxcls.data.base import LabeledImages, Source
from jaxcls.errors import UserError

NAMES = ('digits',)
_NUM_TRAIN = 1437
_UPSAMPLE = 4  # 8x8 -> 32x32


class EmbeddedSource(Source):
  """A dataset bundled with a library; `decode` takes `train` or `test`."""

  def __init__(self, name: str):
    if name not in NAMES:
      raise UserError(f"dataset.name: no embedded dataset {name!r}; with dataset.source="
                      f"'embedded' choose one of: {', '.join(NAMES)}")
    self._name = name
    self.split_sizes = {'train': _NUM_TRAIN, 'test': 1797 - _NUM_TRAIN}
    self.num_classes = 10
    self.class_names = tuple(str(i) for i in range(10))

  def cache_key(self, split: str) -> dict[str, Any]:
    return dict(source='embedded', name=self._name, split=split)

  def decode(self, split: str) -> LabeledImages:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top  # ~1 s to import

    digits = datasets.load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    images = images.repeat(_UPSAMPLE, axis=1).repeat(_UPSAMPLE, axis=2)[..., None]
    labels = digits.target.astype(np.int32)
    if len(labels) != sum(self.split_sizes.values()):
      raise RuntimeError(f'sklearn digits has {len(labels)} images, expected 1797')
    permutation = np.random.RandomState(0).permutation(len(labels))
    index = permutation[:_NUM_TRAIN] if split == 'train' else permutation[_NUM_TRAIN:]
    return LabeledImages(images[index], labels[index])

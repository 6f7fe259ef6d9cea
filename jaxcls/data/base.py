"""The types every dataset source shares: arrays, dataset facts and the `Source` interface.

A source knows its base splits and their sizes without decoding anything, so a split string such
as `train[:30000]` can be checked and resolved before any image is read; decoding happens one base
split at a time, and `jaxcls.data.cache` keeps each decoded base split on disk.
"""

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np


class LabeledImages(NamedTuple):
  """Host arrays of one split: uint8 NHWC images and int32 labels."""
  images: np.ndarray  # uint8 (N, H, W, C)
  labels: np.ndarray  # int32 (N,)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the model and the loop need to know about the loaded data."""
  name: str
  num_classes: int
  image_shape: tuple[int, int, int]  # (H, W, C)
  class_names: tuple[str, ...] | None
  train_size: int
  eval_size: int


class Source(abc.ABC):
  """One opened dataset: its base splits are known, none is decoded yet.

  Attributes:
    split_sizes: base split name -> number of examples. Empty when the source cannot tell (TFDS
      under `tfds.testing.mock_data`); split strings are then only checked for syntax.
    num_classes: number of classes the source defines (the label feature, the class folders).
    class_names: one name per class id, or None when the source has no names.
    reads_split_strings: True when `decode` takes a whole split string (`train[:10%]+test`) and
      slices it itself (TFDS); False when it takes a base split name and the caller slices.
    split_classes: base split name -> the class names found in it, for sources where splits
      can disagree (image folders); None where every split shares one label set.
  """

  split_sizes: Mapping[str, int]
  num_classes: int
  class_names: tuple[str, ...] | None
  reads_split_strings: bool = False
  split_classes: Mapping[str, frozenset[str]] | None = None

  @abc.abstractmethod
  def cache_key(self, split: str) -> dict[str, Any] | None:
    """What identifies the decoded `split` on disk (JSON-able); None: do not cache it."""

  @abc.abstractmethod
  def decode(self, split: str) -> LabeledImages:
    """Reads and decodes every example of `split`, in the source's fixed order."""

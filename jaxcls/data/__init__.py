"""Datasets as host arrays: `train, eval_, info = data.load_dataset(config.dataset)`.

Sources: TFDS, image-folder trees (directory or zip), MNIST-style idx files and scikit-learn's
embedded digits; TFDS split syntax for all of them; decoded splits cached on disk.
"""

from jaxcls.data.base import DatasetInfo, LabeledImages
from jaxcls.data.sources import SOURCES, load_dataset, open_source

__all__ = ['DatasetInfo', 'LabeledImages', 'SOURCES', 'load_dataset', 'open_source']

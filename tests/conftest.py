"""Shared test fixtures: a tiny config that trains in seconds on the embedded digits."""

import os

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from configs import default


def tiny_config(**overrides):
  """Digits (256 train / 128 eval), a 1-block-per-stage ResNetV2 of width 4, batch 32."""
  config = default.get_config()
  config.model.name = 'resnet18'
  config.model.base_width = 4
  config.model.stem_width = 4
  config.model.stage_sizes = (1, 1, 1, 1)
  config.model.convention = 'torch'  # BN momentum 0.9: eval statistics settle in a few steps
  config.dataset.name = 'digits'
  config.dataset.source = 'embedded'
  config.dataset.train_split = 'train[:256]'
  config.dataset.eval_split = 'test[:100]'
  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_epochs = 2
  config.augment.crop_padding = 2
  config.augment.flip = 'none'
  config.log_every_steps = 4
  config.checkpoint_every_steps = 8
  config.progress_every_secs = 1e9
  config.optim.lr = 0.2
  for key, value in overrides.items():
    target = config
    *path, leaf = key.split('.')
    for p in path:
      target = target[p]
    target[leaf] = value
  return config


@pytest.fixture(autouse=True, scope='session')
def _isolated_cache(tmp_path_factory):
  """Decoded-dataset cache in a temp dir, so tests never read or write the user's cache."""
  os.environ.setdefault('JAXCLS_CACHE_DIR', str(tmp_path_factory.mktemp('cache')))


@pytest.fixture(autouse=True, scope='session')
def xla_cache(tmp_path_factory):
  """One persistent XLA compilation cache for the session: the many tiny runs (in process and
  in `main.py` subprocesses, which get it through `JAX_COMPILATION_CACHE_DIR`) compile once."""
  directory = tmp_path_factory.getbasetemp() / 'xla-cache'
  directory.mkdir(exist_ok=True)
  saved = {name: getattr(jax.config, name) for name in (
      'jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs',
      'jax_persistent_cache_min_entry_size_bytes')}
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  compilation_cache.set_cache_dir(str(directory))
  compilation_cache.reset_cache()
  yield directory
  for name, value in saved.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()

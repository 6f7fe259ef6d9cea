"""Shared test fixtures: a tiny config that trains in seconds on the embedded digits, and the
one way tests start processes (`run_python`, `run_main`, `spawned`): each in its own process
group, killed with everything it started when its test is done, times out or dies."""

import functools
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from benchmarks.processes import spawned  # pylint: disable=unused-import  # re-exported
from benchmarks import processes
from configs import default

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_python(*args: str, timeout: float = 300, cwd=REPO, **kwargs) -> subprocess.CompletedProcess:
  """`python *args` with text stdout and stderr captured; its process group is killed on a
  timeout (then `subprocess.TimeoutExpired`) and when it returns."""
  return processes.run([sys.executable, *args], timeout=timeout, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, **kwargs)


def run_main(*args: str, **kwargs) -> subprocess.CompletedProcess:
  """`python main.py *args`, as `run_python`."""
  return run_python(str(REPO / 'main.py'), *args, **kwargs)


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


def pytest_addoption(parser):
  parser.addoption('--runslow', action='store_true',
                   help='also run the tests marked slow (CI does: .ci/run)')


def pytest_configure(config):
  config.addinivalue_line('markers', 'slow: minutes on 2 busy cores; run by `pytest --runslow` '
                                     '(CI), skipped by a plain `pytest`')


def pytest_collection_modifyitems(config, items):
  if config.getoption('--runslow'):
    return
  skip = pytest.mark.skip(reason='slow: run with --runslow (CI does)')
  for item in items:
    if 'slow' in item.keywords:
      item.add_marker(skip)


@pytest.fixture(autouse=True, scope='session')
def _children_die_with_the_session():
  """A `timeout` (SIGTERM) around pytest kills the process groups of the running tests too."""
  processes.kill_on_termination()
  yield
  processes.kill_all()


def numpy_variables(model, input_shape):
  """`model.init`'s variables (eval mode, on `input_shape`) filled by numpy: He-normal kernels,
  unit BN scales and variances, zero biases and means. Compiling the threefry initializers of
  `model.init` costs XLA:CPU far more than the step a test checks."""
  shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                          jax.ShapeDtypeStruct(input_shape, jnp.float32))
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      fan_in = int(np.prod(leaf.shape[:-1]))
      return jnp.asarray(rng.normal(0, np.sqrt(2 / fan_in), leaf.shape), jnp.float32)
    return jnp.full(leaf.shape, 1.0 if name in ('scale', 'var') else 0.0, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, shapes)



def eval_forward_macs(model, input_shape=(1, 16, 16, 3)) -> int:
  """The conv + Dense MACs of `model`'s eval-mode apply on `input_shape`, traced abstractly:
  what `count_macs` (which counts the init trace) must equal when initialisers add none."""
  from jaxcls.models.macs import jaxpr_macs  # pylint: disable=g-import-not-at-top
  x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(1), x, train=False), x)
  return jaxpr_macs(jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x))

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

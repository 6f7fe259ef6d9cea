"""What the benchmarks share: the command line, the train step on synthetic data, the output.

Each benchmark prints ONE JSON line on stdout; `--record NAME` also stores it, with the command,
hardware and date, as `docs/runs/bench-NAME.json` for `python -m jaxcls.report --results-doc`.

The train step is `jaxcls.train.make_train_fn` itself (gather by index, augment, mix, forward,
backward, optimizer), fed with random uint8 images of the dataset's shape: throughput does not
depend on pixel values, and no dataset has to be read.
"""

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, Optional

# TensorFlow (imported only by a TFDS source) must neither grab GPU memory nor flood stderr.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from jaxcls import config_checks, models, optim, parallel, report  # pylint: disable=g-import-not-at-top
from jaxcls import train  # pylint: disable=g-import-not-at-top
from jaxcls.data import augment as augment_lib  # pylint: disable=g-import-not-at-top
from jaxcls.data import feed  # pylint: disable=g-import-not-at-top
from jaxcls.errors import UserError  # pylint: disable=g-import-not-at-top
from jaxcls.models import patchup  # pylint: disable=g-import-not-at-top

# Peak dense FLOP/s per device by (device-kind substring, dtype), from the vendors' data sheets.
# float32 matmuls and convs run as TF32 on these GPUs under JAX's default precision.
PEAK_FLOPS = (
    ('H100 PCIe', {'bfloat16': 756e12, 'float32': 378e12}),
    ('H100', {'bfloat16': 989e12, 'float32': 495e12}),  # SXM
    ('H200', {'bfloat16': 989e12, 'float32': 495e12}),
    ('A100', {'bfloat16': 312e12, 'float32': 156e12}),
    ('RTX 3090', {'bfloat16': 71e12, 'float32': 35.6e12}),  # fp32 accumulate
    ('T4', {'float16': 65e12, 'float32': 8.1e12}),
)


def measure_background() -> None:
  """Samples the other processes' CPU use before a benchmark starts, for its record."""
  global BUSY_BEFORE
  BUSY_BEFORE = report.busy_cores()


BUSY_BEFORE: Optional[float] = None


def peak_flops(device_kind: str, dtype: str) -> Optional[float]:
  for name, peaks in PEAK_FLOPS:
    if name in device_kind:
      return peaks.get(dtype)
  return None


def add_common_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--config', required=True,
                      help='config file with optional variants (configs/resnet50b.py[:sd,htd]), '
                      'or seed_a:MODEL for seed A\'s recipe with any registered model')
  parser.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'),
                      help='compute dtype (config.model.dtype); default: the config\'s')
  add_record_flags(parser)


def add_record_flags(parser: argparse.ArgumentParser) -> None:
  """`--record NAME`, `--notes`, `--record-dir`: what `emit` needs to store a record."""
  parser.add_argument('--record', metavar='NAME',
                      help='also store the result as docs/runs/bench-NAME.json')
  parser.add_argument('--notes', default='', help='notes for the record')
  parser.add_argument('--record-dir', default=os.path.join(report.REPO, report.RUNS_DIR),
                      help='where --record writes (default: docs/runs of this checkout)')


def parse(parser: argparse.ArgumentParser,
          argv: Optional[Sequence[str]]) -> tuple[argparse.Namespace, list[str]]:
  """Flags, plus `--config.FIELD=VALUE` overrides as main.py takes them."""
  args, rest = parser.parse_known_args(argv)
  overrides = [a for a in rest if a.startswith('--config.')]
  unknown = [a for a in rest if not a.startswith('--config.')]
  if unknown:
    parser.error(f'unrecognized arguments: {" ".join(unknown)}')
  if args.record:
    measure_background()
  return args, overrides


def target_config(target: str) -> ml_collections.ConfigDict:
  """A config file (`configs/x.py[:variants]`, relative to here or to the repository) or
  `seed_a:MODEL`: seed A's recipe (`configs/seed_a.py`) for any registered model."""
  if target.startswith('seed_a:'):
    report._ensure_repo_on_path()  # pylint: disable=protected-access
    from configs import seed_a  # pylint: disable=g-import-not-at-top
    return seed_a.recipe(target.split(':', 1)[1], None)
  path = target.split(':', 1)[0]
  if not os.path.isabs(path) and not os.path.isfile(path):
    target = os.path.join(report.REPO, target)
  return report.load_config(target)


def load_config(args: argparse.Namespace, overrides: Sequence[str]) -> ml_collections.ConfigDict:
  config = target_config(args.config)
  report.apply_overrides(config, overrides)
  if args.dtype:
    config.model.dtype = args.dtype
  if getattr(args, 'batch_size', None):
    config.batch_size = args.batch_size
  return config


def describe() -> dict[str, Any]:
  """The device facts every result carries."""
  devices = jax.devices()
  return {'device': devices[0].device_kind, 'platform': devices[0].platform,
          'num_devices': len(devices), 'jax_version': jax.__version__}


def emit(result: dict[str, Any], kind: str, args: argparse.Namespace,
         argv: Optional[Sequence[str]]) -> dict[str, Any]:
  """Prints the JSON line; with `--record`, stores it as a docs/runs record."""
  print(json.dumps(result), flush=True)
  if args.record:
    script = (os.path.relpath(os.path.abspath(sys.argv[0]), report.REPO) if argv is None
              else f'benchmarks/{kind}.py')
    words = ['python', script, *(sys.argv[1:] if argv is None else argv)]
    busy = max(BUSY_BEFORE, report.busy_cores()) if BUSY_BEFORE is not None else None
    record = {'kind': kind, 'name': f'bench-{args.record}',
              **report.record_fields(_without_record_flags(words), args.notes, busy),
              'background_busy_cores': busy, **result}
    path = report.write_record(record, f'bench-{args.record}', args.record_dir)
    print(f'recorded {path}', file=sys.stderr)
  return result


def _without_record_flags(words: Sequence[str]) -> str:
  """The command that reproduces the figure: the flags that only file it are dropped."""
  kept, skip = [], False
  for word in words:
    if skip:
      skip = False
      continue
    if word.split('=', 1)[0] in ('--record', '--notes', '--record-dir'):
      skip = '=' not in word
      continue
    kept.append(word)
  return shlex.join(kept)


@dataclasses.dataclass
class Step:
  """The jitted train step of a config and everything to call it with (step 0 onwards)."""
  config: ml_collections.ConfigDict
  model: Any
  train_fn: Any  # jitted, donates its state
  abstract_args: tuple  # ShapeDtypeStructs of (state, images, labels, perms, epoch0)
  steps_per_epoch: int
  mesh: Any
  image_shape: tuple[int, int, int]
  num_classes: int
  _perms_fn: Any = None

  def macs(self) -> int:
    return models.count_macs(self.model, (1, *self.image_shape))

  def materialize(self, seed: int = 0) -> tuple:
    """Real arrays for the arguments: the initial state and random uint8 data."""
    state_spec, images_spec, labels_spec, _, _ = self.abstract_args
    replicated = parallel.replicated(self.mesh)
    init = jax.jit(lambda key: _init_state(self, key), out_shardings=replicated)
    # An 'rbg' key: XLA compiles threefry-based initializers several times slower, and the
    # values of the initial weights do not matter to a timing.
    state = init(jax.random.key(seed, impl='rbg'))
    rng = np.random.default_rng(seed)
    images = parallel.put_replicated(
        rng.integers(0, 256, images_spec.shape, dtype=np.uint8), self.mesh)
    labels = parallel.put_replicated(
        rng.integers(0, self.num_classes, labels_spec.shape).astype(np.int32), self.mesh)
    del state_spec
    return state, images, labels

  def perms(self, epoch0: int) -> jax.Array:
    """The permutations of epochs `epoch0` and `epoch0 + 1`, replicated as the loop's are."""
    n = self.abstract_args[1].shape[0]
    if self._perms_fn is None:
      self._perms_fn = feed.make_epoch_pair_fn(jax.random.key(1), n,
                                               parallel.replicated(self.mesh))
    return self._perms_fn(epoch0)


def _init_state(step: Step, key: jax.Array) -> train.TrainState:
  tx, _ = optim.create_optimizer(step.config, step.steps_per_epoch)
  return train.create_train_state(step.model, tx, step.image_shape, key)


def build_step(config: ml_collections.ConfigDict, *, steps_per_epoch: int = 8,
               num_steps: int = 1) -> Step:
  """`make_train_fn` for `config` on `steps_per_epoch` synthetic batches of its batch size."""
  config_checks.check_config(config)
  mesh = parallel.make_mesh()
  parallel.check_batch_size('batch_size', config.batch_size, mesh.devices.size)
  image_shape, num_classes = report.input_spec(config)
  model = models.create_model(config.model.name, num_classes=num_classes,
                              **report.model_overrides(config))
  tx, _ = optim.create_optimizer(config, steps_per_epoch)
  mean = config.augment.mean or (127.5,) * image_shape[-1]
  std = config.augment.std or (64.0,) * image_shape[-1]
  augment = augment_lib.make_augment(config.augment, mean, std, image_key=jax.random.key(3))
  mix, hidden_mix = patchup.split_mix(config.mix, num_classes, config.label_smoothing, model)
  train_fn = train.make_train_fn(
      model, tx, augment, mix, train_key=jax.random.key(2), batch_size=config.batch_size,
      steps_per_epoch=steps_per_epoch, mesh=mesh, num_steps=num_steps, hidden_mix=hidden_mix)
  replicated = parallel.replicated(mesh)
  n = steps_per_epoch * config.batch_size
  step = Step(config, model, train_fn, (), steps_per_epoch, mesh, tuple(image_shape),
              num_classes)
  state_shapes = jax.eval_shape(lambda key: _init_state(step, key), jax.random.key(0))
  spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=replicated)
  step.abstract_args = (
      jax.tree.map(lambda a: spec(a.shape, a.dtype), state_shapes),
      spec((n, *image_shape), jnp.uint8), spec((n,), jnp.int32), spec((2, n), jnp.int32),
      # The loop passes the epoch as a Python int: a weakly typed scalar, not a device array.
      jax.ShapeDtypeStruct((), jnp.int32, weak_type=True))
  return step


def cli(main) -> None:
  """Runs `main()`; a UserError is one line on stderr and exit status 2, as in main.py."""
  try:
    main()
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)

"""The training loop: train state, the jitted train and eval functions, `train_and_evaluate`.

`train_and_evaluate` reads as three parts: `setup` (config checks, data, model, optimizer,
input functions, the state restored or initialised: a `Run`) -> `start_loop` and
`Loop.run_to_end` (dispatch steps to the next sync point, then log, check, evaluate, save) ->
`finish` (results.json).

Data flows one way: host arrays (`jaxcls.data`) -> device, replicated once -> each step gathers
its batch by index from the permutation of its epoch -> augment -> mix -> model -> loss -> optax
-> weight average (`jaxcls.averaging`) -> state -> metrics and checkpoints. An eval reads the
weights `config.ema` names, recomputes their BatchNorm statistics first where
`eval.recompute_bn_batches` is set (`jaxcls.precise_bn`), and averages the logits over the
test-time views of `eval.tta`.

Randomness is stateless: step `t` draws from `fold_in(train_key, t)` split into named streams,
epoch `e` visits the data in the order `permutation(fold_in(data_key, e))`, and per-image draws
fixed for the run (the alternating flip) come from `fold_in(image_key, index)`. A resumed run
therefore draws exactly the numbers an uninterrupted run draws, with no RNG state to save.

The loop dispatches asynchronously and reads metrics back only at log, eval and checkpoint
points; `steps_per_dispatch > 1` runs several steps per call to cut per-call overhead where
steps are tiny.

Faults (docs/SCALING.md): SIGTERM or SIGINT stops the loop at the next dispatch boundary with a
checkpoint; a step whose loss or gradient is not finite is found on the device and reported at
the next sync, so guarding costs no host round trip: under `nan_policy='stop'` the run ends
naming the step and the state after it is never checkpointed (every checkpoint is written only
after the steps before it were checked); under `'skip'` the step's update is dropped.
"""

import contextlib
import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable, NamedTuple, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from clu import metrics
from etils import epath
from jax import lax

from jaxcls import averaging, checkpoint, data, logs, models, optim, parallel, precise_bn
from jaxcls import signals as signals_lib
from jaxcls import workdir as workdir_lib
from jaxcls.config_checks import INT32_MAX, check_config
from jaxcls.data import augment as augment_lib
from jaxcls.data import feed as feed_lib
from jaxcls.errors import UserError
from jaxcls.models import patchup
from jaxcls.report import labels

# Named random streams, one key each per step. Models draw theirs with `self.make_rng(name)`.
# `precise_bn` seeds the batches that recompute BatchNorm statistics before an eval at that step.
STREAMS = ('augment', 'mix', 'drop_path', 'shake', 'dropout', 'shakedrop', 'precise_bn')
MODEL_STREAMS = ('drop_path', 'shake', 'dropout', 'shakedrop')
_NO_STEP = np.iinfo(np.int32).max  # `NonFinite.first` when every step was finite


class NonFiniteLoss(UserError):
  """A step's loss or gradient was not finite under `nan_policy='stop'`."""


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  # The weight average `{'params', 'batch_stats'}` (`jaxcls.averaging`); `{}` when off.
  ema: Any = flax.struct.field(default_factory=dict)


@flax.struct.dataclass
class NonFinite(metrics.Metric):
  """Steps whose loss or gradient was not finite: the first (numbered like checkpoints: step `t`
  is the update that makes `state.step == t`) and how many."""
  first: jax.Array
  count: jax.Array

  @classmethod
  def empty(cls) -> 'NonFinite':
    return cls(first=jnp.array(_NO_STEP, jnp.int32), count=jnp.array(0, jnp.int32))

  @classmethod
  def from_model_output(cls, *, step: jax.Array, finite: jax.Array, **_) -> 'NonFinite':
    return cls(first=jnp.where(finite, _NO_STEP, step + 1).astype(jnp.int32),
               count=jnp.logical_not(finite).astype(jnp.int32))

  def merge(self, other: 'NonFinite') -> 'NonFinite':
    return type(self)(first=jnp.minimum(self.first, other.first), count=self.count + other.count)

  def compute(self) -> dict:
    return {'first': self.first, 'count': self.count}


@flax.struct.dataclass
class TrainMetrics(metrics.Collection):
  # A non-finite step is left out of the averages: its loss is meaningless (and NaN).
  loss: metrics.Average.from_fun(
      lambda loss, finite, **_: {'values': loss[None], 'mask': finite[None]})
  accuracy: metrics.Accuracy.from_fun(
      lambda logits, labels, finite, **_: {'logits': logits, 'labels': labels,
                                           'mask': jnp.broadcast_to(finite, labels.shape)})
  nonfinite: NonFinite


@flax.struct.dataclass
class EvalMetrics(metrics.Collection):
  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Accuracy


def step_rngs(train_key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
  """The named keys of one step; a function of (seed, step) only."""
  return dict(zip(STREAMS, jax.random.split(jax.random.fold_in(train_key, step), len(STREAMS))))


def run_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """`(init_key, data_key, train_key, image_key)` of a run: initialisation, epoch order,
  per-step streams, per-image draws fixed for the run (the alternating flip's epoch-0 coin).

  With partitionable threefry a split's first keys do not depend on how many are split, so
  the first three are those of the runs from before `image_key` existed.
  """
  init_key, data_key, train_key, image_key = jax.random.split(jax.random.key(seed), 4)
  return init_key, data_key, train_key, image_key


def _all_finite(tree: Any) -> jax.Array:
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def create_train_state(model, tx: optax.GradientTransformation, image_shape: tuple[int, ...],
                       init_key: jax.Array, *,
                       ema: Optional[ml_collections.ConfigDict] = None,
                       data_init_images: Optional[jax.Array] = None) -> TrainState:
  """Step 0: the model's initial variables, the optimizer's state and, where `ema` (the
  `config.ema` block) enables it, the weight average started from those variables. With
  `data_init_images` (normalised train images), the model's data-dependent init
  `model.data_init(variables, images)` sets its variables first (airbench's whitening)."""
  variables = model.init({'params': init_key}, jnp.zeros((1, *image_shape), jnp.float32),
                         train=False)
  if data_init_images is not None:
    variables = model.data_init(variables, data_init_images)
  params, batch_stats = variables['params'], variables.get('batch_stats', {})
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=tx.init(params),
                    ema=averaging.start(ema, params, batch_stats) if ema else {})


class Batch(NamedTuple):
  """One step's examples: uint8 `images` (batch, H, W, C), int32 `labels` and `index` (batch,),
  the rows of the train split they are, and the step's `epoch` (a scalar)."""
  images: jax.Array
  labels: jax.Array
  index: jax.Array
  epoch: jax.Array


def make_batch_reader(*, batch_size: int, steps_per_epoch: int,
                      host_fed: bool = False) -> Callable[..., Batch]:
  """`read(step, i, *data) -> Batch`: the batch of `step`, the `i`-th step of one call.

  Device-fed `data` is `(images, labels, perms, epoch0)`: the whole train split, replicated,
  and the permutations of epochs `epoch0` and `epoch0 + 1`; the batch is gathered by index.
  Host-fed `data` is `(images, labels, index)`, each `(num_steps, batch_size, ...)` as
  `HostFeed` sends them.
  """

  def gathered(step, i, images, labels, perms, epoch0) -> Batch:
    del i
    epoch, position = jnp.divmod(step, steps_per_epoch)
    index = lax.dynamic_slice_in_dim(perms[epoch - epoch0], position * batch_size, batch_size)
    return Batch(images[index], labels[index], index, epoch)

  def fed(step, i, images, labels, index) -> Batch:
    return Batch(images[i], labels[i], index[i], step // steps_per_epoch)

  return fed if host_fed else gathered


def make_train_fn(model, tx, augment: Callable, mix: Callable, *, train_key: jax.Array,
                  batch_size: int, steps_per_epoch: int, mesh, num_steps: int = 1,
                  nan_policy: str = 'stop', host_fed: bool = False,
                  loss_reduction: str = 'mean', average: Optional[Callable] = None,
                  hidden_mix: patchup.HiddenMix = patchup.no_hidden_mix) -> Callable:
  """`train_fn(state, *data) -> (state, TrainMetrics)`: `num_steps` steps.

  `data` is what `make_batch_reader` reads: device-fed (default), the whole train split,
  replicated, and the permutations of epochs `epoch0` and `epoch0 + 1` (so one call may run up
  to `steps_per_epoch` steps across an epoch boundary); host-fed, the `(num_steps, batch_size,
  ...)` batches themselves (`HostFeed`). Several steps are unrolled rather than put in a
  `lax.fori_loop`: XLA:CPU runs convolutions inside a loop body about 20x slower.

  The loss is the cross-entropy summed or averaged over the batch (`loss_reduction`); the
  metrics report its per-example mean either way. `hidden_mix` wraps the forward pass (PatchUp
  mixes hidden features there) and returns the targets and per-sample loss weights the loss
  uses; both mixes draw from the 'mix' stream. `average` (`averaging.make_update`) updates the
  weight average after each optimizer step. A step whose loss or gradient is not finite is
  counted in `TrainMetrics.nonfinite`; under `nan_policy='skip'` its update (parameters,
  optimizer state, batch statistics) is dropped, while the step counter still advances so that
  the data order and random streams move on.
  """
  batch_sharding = parallel.batch_sharded(mesh)
  read = make_batch_reader(batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                           host_fed=host_fed)
  reduce = {'mean': jnp.mean, 'sum': jnp.sum}[loss_reduction]

  def train_step(state: TrainState, batch: Batch):
    rngs = step_rngs(train_key, state.step)
    images, labels, index = (lax.with_sharding_constraint(a, batch_sharding) for a in batch[:3])
    x = augment(rngs['augment'], images, index, batch.epoch)
    x, targets = mix(rngs['mix'], x, labels)

    def loss_fn(params):
      def forward(x):
        return model.apply(
            {'params': params, 'batch_stats': state.batch_stats}, x, train=True,
            mutable=['batch_stats'], rngs={name: rngs[name] for name in MODEL_STREAMS})

      (logits, updates), mixed = hidden_mix(rngs['mix'], forward, x, targets)
      losses = mixed.weights * optax.softmax_cross_entropy(logits, mixed.targets)
      return reduce(losses), (losses.mean(), logits, updates)

    (objective, (loss, logits, updates)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    finite = jnp.isfinite(objective) & _all_finite(grads)
    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params, param_updates),
                              batch_stats=updates.get('batch_stats', state.batch_stats),
                              opt_state=opt_state)
    if average is not None:
      new_state = average(new_state)
    if nan_policy == 'skip':
      kept = state.replace(step=new_state.step)
      new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
    return new_state, TrainMetrics.single_from_model_output(
        loss=loss, logits=logits, labels=labels, finite=finite, step=state.step)

  def train_fn(state, *data):
    acc = TrainMetrics.empty()
    for i in range(num_steps):
      state, step_metrics = train_step(state, read(state.step, i, *data))
      acc = acc.merge(step_metrics)
    return state, acc

  replicated = parallel.replicated(mesh)
  return jax.jit(train_fn, donate_argnums=0, out_shardings=(replicated, replicated))


def make_eval_fn(model, transform: Callable, *, batch_size: int, mesh,
                 tta: str = 'none') -> Callable:
  """`eval_fn(variables, images, labels, i) -> EvalMetrics` of batch `i` of a split padded to
  full batches, with the model's `{'params', 'batch_stats'}`. Padding rows carry label -1 and
  are masked out, so every example counts once. The logits are the weighted average over the
  views of test-time augmentation `tta` (`augment.tta_views`)."""
  batch_sharding = parallel.batch_sharded(mesh)

  def eval_fn(variables, images, labels, i):
    x = lax.dynamic_slice_in_dim(images, i * batch_size, batch_size)
    y = lax.dynamic_slice_in_dim(labels, i * batch_size, batch_size)
    x = lax.with_sharding_constraint(x, batch_sharding)
    y = lax.with_sharding_constraint(y, batch_sharding)
    logits = sum(weight * model.apply(variables, transform(view), train=False)
                 for weight, view in augment_lib.tta_views(x, tta))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(y, 0))
    return EvalMetrics.single_from_model_output(loss=loss, logits=logits, labels=y, mask=y >= 0)

  return jax.jit(eval_fn, out_shardings=parallel.replicated(mesh))


def _pad_to_batches(split: data.LabeledImages,
                    batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  n = len(split.labels)
  pad = -n % batch_size
  images = np.concatenate([split.images, np.zeros((pad, *split.images.shape[1:]), np.uint8)])
  labels = np.concatenate([split.labels, np.full((pad,), -1, np.int32)])
  return images, labels


def _model_overrides(config: ml_collections.ConfigDict) -> dict:
  return {k: v for k, v in config.model.items() if k != 'name' and v is not None}


@dataclasses.dataclass
class _Clock:
  """Wall time of the run and the pure training time behind `train_images_per_sec`.

  Training time is counted between two host syncs with only training in between; the first
  interval after a (re)start holds the compilation and is left out.
  """
  wall_before: float = 0.0  # from earlier sessions of this run
  train_time: float = 0.0
  train_images: int = 0
  start: float = dataclasses.field(default_factory=time.time)
  last_sync: float = dataclasses.field(default_factory=time.time)
  clean: bool = False  # whether [last_sync, now] held only already-compiled training

  def synced(self, images: int) -> None:
    now = time.time()
    if self.clean:
      self.train_time += now - self.last_sync
      self.train_images += images
    self.last_sync, self.clean = now, True

  def other_work_done(self) -> None:
    self.last_sync, self.clean = time.time(), True

  @property
  def wall_time(self) -> float:
    return self.wall_before + time.time() - self.start

  @property
  def images_per_sec(self) -> Optional[float]:
    return self.train_images / self.train_time if self.train_time else None


# --- Setup: config -> data -> model, optimizer, input functions -> state (restored or fresh).

@dataclasses.dataclass
class Run:
  """One run, set up by `setup`: what the loop and `finish` read. `state`, `skipped` and
  `clock` change as the run goes; everything else is fixed."""
  config: ml_collections.ConfigDict
  workdir: epath.Path
  mesh: jax.sharding.Mesh
  is_main: bool
  train: data.LabeledImages
  eval_split: data.LabeledImages
  info: data.DatasetInfo
  steps_per_epoch: int
  num_steps: int
  model: Any
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  augment: Callable
  mix: Callable
  hidden_mix: patchup.HiddenMix
  eval_transform: Callable
  data_key: jax.Array
  train_key: jax.Array
  variables: Any  # abstract params, batch_stats (and ema): the shapes a checkpoint must have
  ckpts: checkpoint.Checkpoints
  state: TrainState
  clock: _Clock
  skipped: int = 0  # updates dropped under nan_policy='skip', over every session of the run

  @property
  def num_params(self) -> int:
    return sum(x.size for x in jax.tree.leaves(self.state.params))

  def meta(self, step: int) -> dict:
    """The JSON record saved beside the state of checkpoint `step`."""
    return {'step': step, 'model_name': self.config.model.name,
            'variables': checkpoint.shape_signature(self.variables),
            'wall_time_s': self.clock.wall_time, 'train_time_s': self.clock.train_time,
            'train_images': self.clock.train_images, 'skipped_steps': self.skipped,
            # What a step means: resuming under another batch or split size is refused.
            'batch_size': self.config.batch_size, 'train_size': len(self.train.labels),
            'steps_per_epoch': self.steps_per_epoch}


def setup(config: ml_collections.ConfigDict, workdir: str,
          exit_stack: contextlib.ExitStack) -> Run:
  """Checks `config`, locks the workdir, loads the data, builds the model, optimizer and input
  functions, and restores the workdir's newest checkpoint (or initialises, from `init_from`).

  What must be undone on the way out (the workdir lock, Orbax's threads) is pushed on
  `exit_stack`. Raises UserError on bad input before any data is read where it can, and always
  before the workdir's checkpoints or config.json change.
  """
  clock = _Clock()
  check_config(config)
  mesh = parallel.make_mesh()
  parallel.check_batch_size('batch_size', config.batch_size, mesh.devices.size)
  parallel.check_batch_size('eval_batch_size', config.eval_batch_size, mesh.devices.size)
  workdir_path = epath.Path(os.path.abspath(workdir))  # Orbax wants absolute paths
  is_main = jax.process_index() == 0
  if is_main:
    workdir_lib.prepare(workdir_path)
    exit_stack.enter_context(workdir_lib.WorkdirLock(workdir_path))

  train, eval_split, info = data.load_dataset(config.dataset)
  steps_per_epoch = len(train.labels) // config.batch_size
  if not steps_per_epoch:
    raise UserError(f'batch_size: {config.batch_size} is larger than the {len(train.labels)} '
                    f'training images of {config.dataset.train_split}; use a smaller batch')
  num_steps = optim.train_steps(config, steps_per_epoch)
  if num_steps > INT32_MAX:  # the step counter lives in int32 on the device
    raise UserError(f'num_epochs: {config.num_epochs:.10g} epochs of {steps_per_epoch} steps are '
                    f'{num_steps} steps, more than the int32 step counter holds ({INT32_MAX}); '
                    'use fewer epochs')
  model = models.create_model(config.model.name, num_classes=info.num_classes,
                              **_model_overrides(config))
  tx, schedule = optim.create_optimizer(config, steps_per_epoch)
  init_key, data_key, train_key, image_key = run_keys(config.seed)
  augment, eval_transform = _input_transforms(config, train, info, image_key)
  mix, hidden_mix = patchup.split_mix(config.mix, info.num_classes, config.label_smoothing,
                                      model)
  # After everything that can reject the config itself: a bad value is named as such, not as a
  # change from the run the workdir holds.
  workdir_lib.check_same_run(workdir_path, config)

  init = functools.partial(create_train_state, model, tx, info.image_shape, ema=config.ema)
  abstract_state = jax.eval_shape(init, init_key)
  variables = {'params': abstract_state.params, 'batch_stats': abstract_state.batch_stats,
               **({'ema': abstract_state.ema} if abstract_state.ema else {})}
  ckpts = checkpoint.Checkpoints(str(workdir_path), keep=config.keep_checkpoints)
  exit_stack.callback(ckpts.shutdown)  # a no-op after `finish` closed them
  run = Run(config=config, workdir=workdir_path, mesh=mesh, is_main=is_main, train=train,
            eval_split=eval_split, info=info, steps_per_epoch=steps_per_epoch,
            num_steps=num_steps, model=model, tx=tx,
            schedule=schedule, augment=augment, mix=mix, hidden_mix=hidden_mix,
            eval_transform=eval_transform, data_key=data_key, train_key=train_key,
            variables=variables, ckpts=ckpts, state=None, clock=clock)
  _restore_or_init(run, init, init_key, abstract_state)
  if is_main:  # only now: a config the workdir's checkpoints reject does not replace the old one
    workdir_lib.write_atomic(workdir_path / 'config.json', config.to_json_best_effort(indent=2))
  return run


def _input_transforms(config: ml_collections.ConfigDict, train: data.LabeledImages,
                      info: data.DatasetInfo, image_key: jax.Array) -> tuple[Callable, Callable]:
  """`(augment, eval_transform)`, normalising with `config.augment.mean/std` or, where unset,
  the train split's channel statistics."""
  mean, std = config.augment.mean, config.augment.std
  if mean is None or std is None:
    stats = augment_lib.channel_stats(train.images)
    mean = stats[0] if mean is None else mean
    std = stats[1] if std is None else std
  augment = augment_lib.make_augment(config.augment, mean, std, image_key)
  # Traced once, abstractly: size checks (crop padding, Cutout) fail now, not at the first step.
  jax.eval_shape(augment, jax.random.key(0), jax.ShapeDtypeStruct((1, *info.image_shape),
                                                                  jnp.uint8),
                 jax.ShapeDtypeStruct((1,), jnp.int32), jax.ShapeDtypeStruct((), jnp.int32))
  return augment, augment_lib.make_eval_transform(mean, std)


def _restore_or_init(run: Run, init: Callable, init_key: jax.Array, abstract_state) -> None:
  """Sets `run.state`: the workdir's newest checkpoint, else `init_from`'s weights on a fresh
  state, else a fresh state; a restored run also continues its clock and skip count.

  A fresh state of a model with a data-dependent init (`data_init`, `data_init_images`) is
  built from the first `data_init_images` train images as the model sees them at eval
  (normalised, not augmented); a restored one has those variables in its checkpoint.
  """
  replicated = parallel.replicated(run.mesh)
  restored = run.ckpts.restore(
      jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
                   abstract_state), run.variables)
  if restored is not None:
    run.state, meta = restored
    workdir_lib.check_step_meaning(meta, batch_size=run.config.batch_size,
                                   train_size=len(run.train.labels))
    run.clock.wall_before = meta['wall_time_s']
    run.clock.train_time, run.clock.train_images = meta['train_time_s'], meta['train_images']
    run.skipped = meta.get('skipped_steps', 0)
    logging.info('Resumed from %s at step %d.', run.ckpts.directory, meta['step'])
    return
  if hasattr(run.model, 'data_init'):  # data-dependent init: fresh starts only
    images = parallel.put_replicated(run.train.images[:run.model.data_init_images], run.mesh)
    fresh = lambda key, images: init(key, data_init_images=run.eval_transform(images))
    run.state = jax.jit(fresh, out_shardings=replicated)(init_key, images)
  else:
    run.state = jax.jit(init, out_shardings=replicated)(init_key)
  if run.config.init_from:
    state = _init_from(run.state, run.config.init_from, replicated)
    run.state = state.replace(ema=averaging.start(run.config.ema, state.params,
                                                  state.batch_stats))


def _finished_results(run: Run) -> Optional[dict]:
  """The results of a run that already finished in this workdir, or None."""
  results_path = run.workdir / 'results.json'
  if int(run.state.step) < run.num_steps or not results_path.exists():
    return None
  try:
    results = json.loads(results_path.read_text())
  except ValueError:  # not valid JSON: written by a version without atomic writes
    return None
  return results if results.get('step') == int(run.state.step) else None


# --- The step functions of a run, and the device arrays they read.

@dataclasses.dataclass
class Steps:
  """Jitted train and eval functions with their data on the device.

  `train(state, step, n)` runs steps `step .. step + n - 1` (n is 1 or `chunk`), feeding them
  from the device copy of the train split (or `HostFeed`); `evaluate(state)` returns the eval
  split's `EvalMetrics`, computed, of the weights `config.ema` says to evaluate, with their
  BatchNorm statistics recomputed first where `config.eval.recompute_bn_batches` asks.
  """
  run: Run
  chunk: int
  train_fns: dict[int, Callable]
  eval_fn: Callable
  eval_arrays: tuple[jax.Array, jax.Array]
  bn_fn: Optional[Callable] = None  # precise BN: adds one batch's BN statistics to a total
  feed: Optional[feed_lib.HostFeed] = None
  train_arrays: Optional[tuple[jax.Array, jax.Array]] = None
  perms_fn: Optional[Callable] = None
  _perms: Any = None
  _perms_epoch: Optional[int] = None

  @classmethod
  def build(cls, run: Run) -> 'Steps':
    config, mesh = run.config, run.mesh
    host_fed = config.data_feed == 'host' or (config.data_feed == 'auto'
                                              and jax.process_count() > 1)
    chunk = min(config.steps_per_dispatch, run.steps_per_epoch)
    average = averaging.make_update(config.ema, run.num_steps)
    train_fns = {n: make_train_fn(run.model, run.tx, run.augment, run.mix,
                                  train_key=run.train_key, batch_size=config.batch_size,
                                  steps_per_epoch=run.steps_per_epoch, mesh=mesh, num_steps=n,
                                  nan_policy=config.nan_policy, host_fed=host_fed,
                                  loss_reduction=config.loss_reduction, average=average,
                                  hidden_mix=run.hidden_mix)
                 for n in {1, chunk}}
    eval_fn = make_eval_fn(run.model, run.eval_transform, batch_size=config.eval_batch_size,
                           mesh=mesh, tta=config.eval.tta)
    eval_arrays = tuple(parallel.put_replicated(a, mesh)
                        for a in _pad_to_batches(run.eval_split, config.eval_batch_size))
    steps = cls(run=run, chunk=chunk, train_fns=train_fns, eval_fn=eval_fn,
                eval_arrays=eval_arrays, bn_fn=_make_bn_fn(run, host_fed))
    if host_fed:
      steps.feed = feed_lib.HostFeed(run.train, run.data_key, batch_size=config.batch_size,
                                     steps_per_epoch=run.steps_per_epoch, mesh=mesh)
    else:
      steps.train_arrays = (parallel.put_replicated(run.train.images, mesh),
                            parallel.put_replicated(run.train.labels, mesh))
      steps.perms_fn = feed_lib.make_epoch_pair_fn(run.data_key, len(run.train.labels),
                                                   parallel.replicated(mesh))
    return steps

  @property
  def data_feed(self) -> str:
    return 'host' if self.feed is not None else 'device'

  def train_data(self, step: int, n: int) -> tuple:
    """What a train call of steps `step .. step + n - 1` reads (`make_batch_reader`)."""
    if self.feed is not None:
      return self.feed(step, n)
    epoch0 = step // self.run.steps_per_epoch
    if self._perms_epoch != epoch0:
      self._perms, self._perms_epoch = self.perms_fn(epoch0), epoch0
    return (*self.train_arrays, self._perms, epoch0)

  def train(self, state: TrainState, step: int, n: int) -> tuple[TrainState, TrainMetrics]:
    return self.train_fns[n](state, *self.train_data(step, n))

  def evaluated_variables(self, state: TrainState) -> dict:
    """The weights to evaluate (`averaging.evaluated`), with precise BN statistics where set:
    averages over the batches of steps `step .. step + N - 1`; `state` keeps its own."""
    variables = averaging.evaluated(self.run.config.ema, state)
    if self.bn_fn is None:
      return variables
    # At most one epoch's batches: a small split (a smoke run) keeps the config's default.
    step = int(state.step)
    n = min(self.run.config.eval.recompute_bn_batches, self.run.steps_per_epoch)
    batch_stats = precise_bn.recompute(self.bn_fn, variables, step, n,
                                       *self.train_data(step, n))
    return {**variables, 'batch_stats': batch_stats}

  def evaluate(self, state: TrainState) -> dict:
    images, labels = self.eval_arrays
    variables = self.evaluated_variables(state)
    batches = [self.eval_fn(variables, images, labels, i)
               for i in range(labels.shape[0] // self.run.config.eval_batch_size)]
    return functools.reduce(lambda a, b: a.merge(b), jax.device_get(batches)).compute()


def precise_bn_rngs(train_key: jax.Array, step: jax.Array, k: jax.Array) -> dict:
  """Keys of batch `k` of the precise-BN pass before the eval at `step`: its augmentation and
  the model's streams, from the step's `precise_bn` stream."""
  rngs = step_rngs(step_rngs(train_key, step)['precise_bn'], k)
  return {name: rngs[name] for name in ('augment', *MODEL_STREAMS)}


def _make_bn_fn(run: Run, host_fed: bool) -> Optional[Callable]:
  """The jitted `precise_bn` accumulate function of the run, or None when it is off."""
  if not run.config.eval.recompute_bn_batches:
    return None
  read = make_batch_reader(batch_size=run.config.batch_size,
                           steps_per_epoch=run.steps_per_epoch, host_fed=host_fed)
  accumulate = precise_bn.make_accumulate_fn(
      run.model, run.augment, read, functools.partial(precise_bn_rngs, run.train_key))
  return jax.jit(accumulate, out_shardings=parallel.replicated(run.mesh))


# --- The loop: dispatch steps up to the next sync point; there log, check, evaluate, save.

@dataclasses.dataclass
class Loop:
  """The loop's bookkeeping between sync points, and what it reports at the end."""
  run: Run
  steps: Steps
  writer: logs.Writer
  report: logs.Progress
  pending: list = dataclasses.field(default_factory=list)  # TrainMetrics since the last log
  pending_steps: int = 0
  unchecked: list = dataclasses.field(default_factory=list)  # NonFinite since the last sync
  eval_scalars: Optional[dict] = None
  train_loss: Optional[float] = None

  def next_stop(self, step: int) -> int:
    """The next step at which to sync: a log, eval or checkpoint point, or the end."""
    config = self.run.config
    stops = [self.run.num_steps]
    for every in (config.log_every_steps, self.eval_every, config.checkpoint_every_steps):
      if every:
        stops.append((step // every + 1) * every)
    return min(stops)

  @property
  def eval_every(self) -> int:
    return self.run.config.eval_every_epochs * self.run.steps_per_epoch

  def dispatch_until(self, stop: int, signals: signals_lib.StopSignals) -> int:
    """Dispatches steps up to `stop` (sooner on a stop request); returns the step reached."""
    run = self.run
    step = int(run.state.step)
    while step < stop and not signals.requested():
      n = self.steps.chunk if stop - step >= self.steps.chunk else 1
      run.state, chunk_metrics = self.steps.train(run.state, step, n)
      self.pending.append(chunk_metrics)
      self.unchecked.append(chunk_metrics.nonfinite)
      self.pending_steps += n
      step += n
    return step

  def check_finite(self) -> None:
    """Counts the dropped updates since the last sync; raises NonFiniteLoss under 'stop'."""
    run, unchecked, self.unchecked = self.run, self.unchecked, []
    if not unchecked:
      return
    bad = functools.reduce(lambda a, b: a.merge(b), jax.device_get(unchecked)).compute()
    first, count = int(bad['first']), int(bad['count'])
    if not count:
      return
    if run.config.nan_policy == 'stop':
      run.ckpts.wait()  # a checkpoint still being written is from before `first`: keep it
      last = run.ckpts.latest_step()
      kept = (f'the last good checkpoint is step {last} in {run.ckpts.directory}'
              if last is not None else 'no checkpoint was written before it')
      raise NonFiniteLoss(
          f"nan_policy: the loss or a gradient is not finite at step {first}, so the run stopped "
          f"there; {kept}. Lower optim.lr, or rerun with --config.nan_policy=skip to drop such "
          'steps')
    logging.warning('nan_policy=skip: dropped the updates of %d steps whose loss or gradient is '
                    'not finite (the first at step %d).', count, first)
    run.skipped += count

  def log_train(self, step: int) -> None:
    merged = functools.reduce(lambda a, b: a.merge(b), jax.device_get(self.pending)).compute()
    self.run.clock.synced(self.pending_steps * self.run.config.batch_size)
    self.pending, self.pending_steps = [], 0
    self.train_loss = float(merged['loss'])
    self.writer.write_scalars(step, {'train_loss': self.train_loss,
                                     'train_accuracy': float(merged['accuracy']),
                                     'learning_rate': float(self.run.schedule(step - 1))})

  def evaluate(self, step: int) -> dict:
    with self.report.timed('eval'):
      computed = self.steps.evaluate(self.run.state)
    self.run.clock.other_work_done()
    self.eval_scalars = {f'eval_{k}': float(v) for k, v in computed.items()}
    self.writer.write_scalars(step, {**self.eval_scalars,
                                     'epoch': step / self.run.steps_per_epoch})
    return self.eval_scalars

  def save(self, step: int) -> None:
    run = self.run
    with self.report.timed('checkpoint'):
      run.ckpts.save(step, run.state, run.meta(step))
    run.clock.other_work_done()

  def stop_early(self, step: int, signals: signals_lib.StopSignals) -> None:
    """Saves the step a stop request ended the loop at (if it is new) and says how to resume."""
    run = self.run
    if step > (run.ckpts.latest_step() or 0):  # nothing to save before the first step
      run.ckpts.save(step, run.state, run.meta(step))
    run.ckpts.close()
    self.writer.flush()
    latest = run.ckpts.latest_step()
    saved = (f'checkpoint of step {latest} in {run.ckpts.directory}; run the same command again '
             'to resume' if latest is not None else
             'before the first step, so no checkpoint was written; run the same command again '
             'to start')
    logging.warning('Stopped by %s at step %d of %d, %s.',
                    signals.received or 'a signal to another process', step, run.num_steps,
                    saved)

  def run_to_end(self, signals: signals_lib.StopSignals) -> bool:
    """Trains to `num_steps`; returns False if a stop request ended it early (saved)."""
    run, config = self.run, self.run.config
    step = int(run.state.step)
    run.clock.last_sync = time.time()
    while step < run.num_steps:
      step = self.dispatch_until(self.next_stop(step), signals)
      stopping = signals.requested(collective=True) and step < run.num_steps
      self.report(step, run.state)
      self.check_finite()  # before anything is saved
      if stopping:
        self.stop_early(step, signals)
        return False
      if step % config.log_every_steps == 0 or step == run.num_steps:
        self.log_train(step)
      if (self.eval_every and step % self.eval_every == 0) or step == run.num_steps:
        self.evaluate(step)
      if step % config.checkpoint_every_steps == 0 or step == run.num_steps:
        self.save(step)
    return True


def start_loop(run: Run) -> Loop:
  """Logs the run's size, puts its data on the device and opens the writer and progress."""
  config = run.config
  devices = run.mesh.devices.size
  logging.info('Model %s: %s params, %s batch stats; %d steps (%g epochs of %d) on %d device%s.',
               labels.run_label(config), f'{run.num_params:,}',
               f'{sum(x.size for x in jax.tree.leaves(run.state.batch_stats)):,}',
               run.num_steps, config.num_epochs, run.steps_per_epoch, devices,
               '' if devices == 1 else 's')
  steps = Steps.build(run)
  writer = logs.create_writer(str(run.workdir), run.is_main)
  report = logs.Progress(
      run.num_steps, run.steps_per_epoch, start_step=int(run.state.step),
      every_secs=config.progress_every_secs, writer=writer,
      cadence={'eval': config.eval_every_epochs * run.steps_per_epoch,
               'checkpoint': config.checkpoint_every_steps},
      expected_gpu_hours=config.get('expected_gpu_hours'))
  steps.train_fns = {n: report.first_call(fn, n) for n, fn in steps.train_fns.items()}
  return Loop(run=run, steps=steps, writer=writer, report=report)


# --- The end: results.json.

def finish(loop: Loop) -> dict:
  """Closes the checkpoints and the writer and writes `workdir/results.json`; returns it."""
  run, config = loop.run, loop.run.config
  step = int(run.state.step)
  eval_scalars = loop.eval_scalars
  if eval_scalars is None:  # resumed at the end of a run that stopped before its results
    eval_scalars = loop.evaluate(step)
  run.ckpts.close()
  loop.writer.flush()
  results = {
      'test_accuracy': eval_scalars['eval_accuracy'], 'test_loss': eval_scalars['eval_loss'],
      'step': step, 'epoch': epochs(step, run.steps_per_epoch), 'params': run.num_params,
      'wall_time_s': run.clock.wall_time, 'train_images_per_sec': run.clock.images_per_sec,
      'model': config.model.name, 'model_label': labels.run_label(config),
      'dataset': config.dataset.name,
      'train_split': config.dataset.train_split, 'eval_split': config.dataset.eval_split,
      'eval_size': len(run.eval_split.labels), 'batch_size': config.batch_size,
      'device': jax.devices()[0].device_kind, 'num_devices': run.mesh.devices.size,
      'dtype': config.model.dtype, 'jax_version': jax.__version__,
      'train_loss': loop.train_loss, 'nan_policy': config.nan_policy,
      'skipped_steps': run.skipped, 'num_processes': jax.process_count(),
      'data_feed': loop.steps.data_feed,
  }
  if run.is_main:
    workdir_lib.write_atomic(run.workdir / 'results.json', json.dumps(results, indent=2) + '\n')
  logging.info('Finished: %s', _summary(results))
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       second_signal_kills: bool = False) -> TrainState:
  """Trains `config` in `workdir`, resuming from its newest checkpoint; returns the final state.

  setup -> loop -> finish. Writes `workdir/results.json` at the end; a finished run only
  re-reports its results. On SIGTERM or SIGINT it saves a checkpoint at the current step and
  returns that state early (rerunning resumes); a second signal aborts without one (ending the
  process at once if `second_signal_kills`, else as the previous handler does: SIGINT raises
  KeyboardInterrupt). A non-finite step under `nan_policy='stop'` raises `NonFiniteLoss`; any
  error releases the workdir and stops Orbax's threads before it propagates.
  """
  with (signals_lib.StopSignals(second_signal_kills) as signals,
        contextlib.ExitStack() as exit_stack):
    run = setup(config, workdir, exit_stack)
    finished = _finished_results(run)
    if finished is not None:
      logging.info('Run already finished at step %d: %s', finished['step'], _summary(finished))
      run.ckpts.close()
      return run.state
    loop = start_loop(run)
    if loop.run_to_end(signals):
      finish(loop)
    return run.state


def epochs(step: int, steps_per_epoch: int) -> float:
  """Epochs done after `step` steps: an int when whole, else rounded to 3 decimals."""
  whole, part = divmod(step, steps_per_epoch)
  return whole if not part else round(step / steps_per_epoch, 3)


def _summary(results: dict) -> str:
  speed = results.get('train_images_per_sec')
  return (f"test_accuracy={results['test_accuracy']:.4f} after {results['epoch']} epochs "
          f"({results['step']} steps), wall time {results['wall_time_s']:.0f} s"
          + (f', {speed:,.0f} train images/s' if speed else ''))


def _init_from(state: TrainState, workdir: str, sharding) -> TrainState:
  """Starts from another run's weights; leaves whose shape differs (a new head) stay fresh."""
  loaded = checkpoint.load_variables(workdir)
  kept = []

  def take(path, fresh, old):
    if old is not None and tuple(np.shape(old)) == fresh.shape:
      return jax.device_put(np.asarray(old, fresh.dtype), sharding)
    kept.append(jax.tree_util.keystr(path))
    return fresh

  def merge(fresh_tree, old_tree):
    old_flat = {jax.tree_util.keystr(p): v
                for p, v in jax.tree_util.tree_flatten_with_path(old_tree)[0]}
    return jax.tree_util.tree_map_with_path(
        lambda p, x: take(p, x, old_flat.get(jax.tree_util.keystr(p))), fresh_tree)

  state = state.replace(params=merge(state.params, loaded['params']),
                        batch_stats=merge(state.batch_stats, loaded['batch_stats']))
  if kept:
    logging.warning('init_from %s: %d tensors did not match and keep their fresh init: %s',
                    workdir, len(kept), ', '.join(kept[:5]))
  logging.info('Initialised from the weights of %s.', workdir)
  return state

"""Mixed precision: `model.dtype='bfloat16'` computes convs and matmuls in bf16 while parameters,
optimizer state and BatchNorm statistics stay float32, for every registered model.

Every model is checked by tracing only (reduced to its smallest depth where it has one); the tiny
ResNetV2 also runs a real bf16 train step against the float32 step from the same state.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcls import models, optim, parallel, train
from jaxcls.data import augment as augment_lib
from jaxcls.data import mixing
from jaxcls.models.registry import model_fields
from tests.conftest import numpy_variables, tiny_config

SHAPE = (32, 32, 3)
RNGS = {name: jax.random.key(i) for i, name in enumerate(train.MODEL_STREAMS)}
MATMULS = ('conv_general_dilated', 'dot_general')


@functools.cache
def small_overrides(name: str) -> tuple[tuple[str, object], ...]:
  """The cheapest variant of model `name` of the same family: one unit per stage, the smallest
  depth the family accepts, no upsampling, width factor 1. Fields a family lacks are left."""
  model = models.create_model(name)
  fields = model_fields(model)
  overrides = {}
  if 'stage_sizes' in fields:
    overrides['stage_sizes'] = tuple(1 for _ in model.stage_sizes)
  if 'blocks' in fields:  # MobileNetV2's (t, c, n, s) rows
    overrides['blocks'] = tuple((t, c, 1, s) for t, c, _, s in model.blocks)
  if 'depth_coefficient' in fields:  # EfficientNet's (expand, kernel, stride, c, n) rows
    overrides['depth_coefficient'] = 1.0
    overrides['stages'] = tuple((*row[:4], 1) for row in model.stages)
  if 'upsample' in fields:
    overrides['upsample'] = 1
  if 'middle_blocks' in fields:  # Xception's middle flow
    overrides['middle_blocks'] = 1
  if 'widen_factor' in fields:
    overrides['widen_factor'] = 1
  if 'depth' in fields:
    for depth in range(1, model.depth + 1):
      try:
        candidate = models.create_model(name, depth=depth, **overrides)
        models.count_params(candidate, (1, *SHAPE))
      except Exception:  # pylint: disable=broad-except  # not a depth this family builds
        continue
      overrides['depth'] = depth
      break
  return tuple(sorted(overrides.items()))


def _model(name: str, dtype: str):
  return models.create_model(name, num_classes=10, dtype=dtype, **dict(small_overrides(name)))


def _matmul_dtypes(jaxpr) -> list[tuple[str, tuple[str, ...]]]:
  """(primitive, operand dtypes) of every conv and dot in a jaxpr, sub-jaxprs included."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in MATMULS:
      found.append((eqn.primitive.name, tuple(str(v.aval.dtype) for v in eqn.invars)))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          found += _matmul_dtypes(inner)
  return found


def _loss_and_grad(model, variables, x, y):
  def loss_fn(params):
    logits, updates = model.apply({'params': params, 'batch_stats': variables['batch_stats']},
                                  x, train=True, mutable=['batch_stats'], rngs=RNGS)
    return jnp.mean(jnp.sum(-y * jax.nn.log_softmax(logits), -1)), (logits, updates)
  return jax.value_and_grad(loss_fn, has_aux=True)(variables['params'])


@pytest.mark.parametrize('name', models.list_models())
def test_bf16_computes_in_bf16_and_keeps_float32_state(name):
  model = _model(name, 'bfloat16')
  x = jax.ShapeDtypeStruct((2, *SHAPE), jnp.float32)
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
  stored = {k: {str(a.dtype) for a in jax.tree.leaves(v)} for k, v in variables.items()}
  assert stored['params'] == {'float32'}
  assert stored.get('batch_stats', {'float32'}) == {'float32'}

  y = jax.ShapeDtypeStruct((2, 10), jnp.float32)
  jaxpr, out = jax.make_jaxpr(functools.partial(_loss_and_grad, model), return_shape=True)(
      variables, x, y)
  found = _matmul_dtypes(jaxpr.jaxpr)
  assert found, 'no convolution or matmul in the train step'
  in_float32 = [f for f in found if set(f[1]) != {'bfloat16'}]
  assert not in_float32, f'{len(in_float32)} of {len(found)} convs/dots not in bf16'
  (_, (logits, updates)), grads = out
  assert logits.dtype == jnp.float32
  assert {str(a.dtype) for a in jax.tree.leaves((grads, updates))} <= {'float32'}


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in jax.tree.leaves(tree)])


def _relative(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _numpy_init(model, tx, image_shape) -> train.TrainState:
  """The train state of `conftest.numpy_variables` (no `model.init` compile)."""
  variables = numpy_variables(model, (1, *image_shape))
  params = variables['params']
  return train.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=variables['batch_stats'], opt_state=tx.init(params))


def test_bf16_step_is_close_to_the_float32_step():
  """One train step (`make_train_fn`: gather, augment, model, loss, SGD) of the tiny ResNetV2 in
  bf16 and in float32, from the same state on the same batch.

  A random-init network's gradient is ill-conditioned: rounding only the float32 PARAMETERS to
  bf16 (float32 compute) already moves this one's update by about 10%. The bf16 step's update
  must stay within 2.5x that sensitivity, its loss within 1%, its BN statistics within 1%.
  (Every family's dtype policy is checked above; they share the conv/Dense/BN definitions.)
  """
  config = tiny_config()
  mesh = parallel.make_mesh()
  batch = 32
  tx, _ = optim.create_optimizer(config, 1)
  augment = augment_lib.make_augment(config.augment, (127.5,), (64.0,))
  mix = mixing.make_mix(config.mix, 10)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (batch, 32, 32, 1), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, batch).astype(np.int32))
  perms = jnp.stack([jnp.arange(batch)] * 2)
  fields = {k: v for k, v in config.model.items() if k != 'name' and v is not None}

  def train_fn(dtype):
    model = models.create_model('resnet18', num_classes=10, **{**fields, 'dtype': dtype})
    return model, train.make_train_fn(model, tx, augment, mix, train_key=jax.random.key(1),
                                      batch_size=batch, steps_per_epoch=1, mesh=mesh)

  model32, fn32 = train_fn('float32')
  _, fn16 = train_fn('bfloat16')
  state = _numpy_init(model32, tx, (32, 32, 1))
  start = _flat(state.params)
  rounded_params = jax.tree.map(lambda p: p.astype(jnp.bfloat16).astype(jnp.float32),
                                state.params)
  rounded_start = _flat(rounded_params)
  rounded = jax.tree.map(jnp.copy, state.replace(params=rounded_params))
  new32, metrics32 = fn32(jax.tree.map(jnp.copy, state), images, labels, perms, 0)
  new16, metrics16 = fn16(jax.tree.map(jnp.copy, state), images, labels, perms, 0)
  new_rounded, _ = fn32(rounded, images, labels, perms, 0)

  dtypes = {str(a.dtype) for a in jax.tree.leaves((new16.params, new16.batch_stats,
                                                    new16.opt_state))}
  assert dtypes == {'float32', 'int32'}  # int32: optax's step count
  loss32, loss16 = (float(m.compute()['loss']) for m in (metrics32, metrics16))
  assert abs(loss16 - loss32) <= 0.01 * abs(loss32)
  update32 = _flat(new32.params) - start
  update16 = _flat(new16.params) - start
  sensitivity = _relative(_flat(new_rounded.params) - rounded_start, update32)
  error = _relative(update16, update32)
  assert 0 < error <= 2.5 * sensitivity, (error, sensitivity)
  assert _relative(_flat(new16.batch_stats), _flat(new32.batch_stats)) < 1e-2

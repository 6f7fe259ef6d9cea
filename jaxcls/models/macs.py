"""Parameter and multiply-accumulate counts, without compiling anything.

Seed A's "FLOPs/2" column is exactly the multiply-accumulates of the Conv2D and Dense layers at
batch 1 (SPEC section 0): BN, activations, residual adds, pooling and padding are excluded. XLA's
`cost_analysis()` cannot reproduce it: it counts every elementwise op (BN, activations, adds) and
depends on the backend's fusion. So `count_macs` walks a jaxpr instead and counts only
`conv_general_dilated` and `dot_general`.

Both counts come from ONE trace of the eval-mode `model.init`: init runs the forward pass once
to create the variables, and parameter initialisers (variance scaling, zeros, ones) contain no
conv or matmul, so the conv/matmul MACs of the init jaxpr are those of `apply(train=False)`
(tests check this per family). Tracing a deep DenseNet takes seconds; the trace is cached.
"""

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

CIFAR_SHAPE = (1, 32, 32, 3)


@dataclasses.dataclass(frozen=True)
class _InitTrace:
  variables: Any  # ShapeDtypeStructs of model.init's output
  macs: int  # conv and matmul MACs of its jaxpr, i.e. of one eval-mode forward pass


def _trace_init(model: nn.Module, input_shape: tuple[int, ...]) -> _InitTrace:
  x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
  jaxpr, variables = jax.make_jaxpr(functools.partial(model.init, train=False),
                                    return_shape=True)(jax.random.key(0), x)
  return _InitTrace(variables, jaxpr_macs(jaxpr))


_cached_trace_init = functools.lru_cache(maxsize=128)(_trace_init)


def _init_trace(model: nn.Module, input_shape: tuple[int, ...]) -> _InitTrace:
  try:
    hash(model)
  except TypeError:  # a field holds a list or another unhashable value
    return _trace_init(model, tuple(input_shape))
  return _cached_trace_init(model, tuple(input_shape))


def abstract_variables(model: nn.Module, input_shape: tuple[int, ...] = CIFAR_SHAPE) -> Any:
  """Shapes and dtypes of `model.init` (eval mode) as ShapeDtypeStructs; nothing is computed.

  Cached per (model, input shape) with the MAC count, from a single trace.
  """
  return _init_trace(model, input_shape).variables


def _size(tree: Any) -> int:
  return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def count_params(model: nn.Module,
                 input_shape: tuple[int, ...] = CIFAR_SHAPE) -> tuple[int, int]:
  """(number of `params`, number of `batch_stats`) of `model` on inputs of `input_shape`.

  Keras' `count_params()` (seed A's counts) is their sum; PyTorch's `parameters()` (seed B) is
  the first.
  """
  variables = abstract_variables(model, input_shape)
  return _size(variables.get('params', {})), _size(variables.get('batch_stats', {}))


def _eqn_macs(eqn: Any) -> int:
  name = eqn.primitive.name
  if name == 'conv_general_dilated':
    out = eqn.outvars[0].aval.shape
    rhs = eqn.invars[1].aval.shape
    rhs_spec = eqn.params['dimension_numbers'].rhs_spec  # (out, in, *spatial) axes
    # The kernel's input-feature dim is already in_channels / feature_group_count.
    per_output = math.prod(rhs[d] for d in rhs_spec[1:])
    return math.prod(out) * per_output
  if name == 'dot_general':
    (_, rhs_contract), (_, rhs_batch) = eqn.params['dimension_numbers']
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    rhs_free = math.prod(d for i, d in enumerate(rhs) if i not in (*rhs_contract, *rhs_batch))
    # lhs holds batch x free x contracting dims; each of its elements meets every rhs free one.
    return math.prod(lhs) * rhs_free
  return 0


def _sub_jaxprs(value: Any) -> list[Any]:
  """Jaxprs held in an equation parameter (pjit, custom_jvp/vjp, remat, cond branches...)."""
  if hasattr(value, 'eqns'):  # Jaxpr
    return [value]
  if hasattr(value, 'jaxpr') and hasattr(value.jaxpr, 'eqns'):  # ClosedJaxpr
    return [value.jaxpr]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def jaxpr_macs(jaxpr: Any) -> int:
  """Conv and matmul multiply-accumulates of a (Closed)Jaxpr, recursing into sub-jaxprs.

  A scan body counts `length` times; of a cond's branches the largest counts; a while loop's body
  counts once (its trip count is not static).
  """
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)
  total = 0
  for eqn in jaxpr.eqns:
    total += _eqn_macs(eqn)
    if eqn.primitive.name == 'cond':
      total += max((jaxpr_macs(b) for b in eqn.params['branches']), default=0)
      continue
    inner = sum(jaxpr_macs(j) for v in eqn.params.values() for j in _sub_jaxprs(v))
    if eqn.primitive.name == 'scan':
      inner *= eqn.params['length']
    total += inner
  return total


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = CIFAR_SHAPE) -> int:
  """Multiply-accumulates of the conv and Dense layers of one eval-mode forward pass.

  Use batch 1 in `input_shape` for seed A's "FLOPs/2" convention.
  """
  return _init_trace(model, input_shape).macs

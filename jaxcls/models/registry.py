"""Model registry (timm style): `@register_model` factories, picked by `config.model.name`.

A factory is a no-argument function named after the model that returns a linen Module with the
preset's field values; `create_model` then overrides fields by keyword, so every field of the
module is a config knob (`create_model('resnet18', stage_sizes=(1, 1, 1, 1))`).

Numbers are checked here for every family, by the field's name and the preset's type, so a new
family needs no code for it: an integer that sizes something (a width, depth, size, filter or
group count, as `SIZE_FIELD` matches, also inside tuples) must be >= 1, any other integer >= 0;
a float must be finite, in [0, 1) for a `*_rate`, (0, 1] for `survival_prob`, [0, 1] for another
`*_prob`, and > 0 otherwise (a width multiplier, a reduction). What only the family knows (depth
= 6n + 4) it checks when the model is built; `check_buildable` runs that without computing.
"""

from collections.abc import Callable, Iterator
import dataclasses
import math
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers

_MODELS: dict[str, Callable[[], nn.Module]] = {}

# Fields that are not knobs: flax's own bookkeeping.
_INTERNAL_FIELDS = ('parent', 'name')
_DTYPES = ('float32', 'bfloat16', 'float16')
# Integer fields that size the network: 0 would give empty layers (or divide by zero).
SIZE_FIELD = re.compile(r'(width|widths|depth|depths|size|sizes|filters|growth_rates?|expansion|'
                        r'cardinality|widen|upsample|num_classes|groups|radix|heads|channels)$')
_INT_MAX = 2**31 - 1  # sizes beyond int32 are typos, and would overflow XLA's shapes


def register_model(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
  """Registers `factory` under its function name; returns it unchanged."""
  name = factory.__name__
  if name in _MODELS:
    raise ValueError(f'model {name!r} is registered twice')
  _MODELS[name] = factory
  return factory


def list_models() -> list[str]:
  """Names of all registered models, sorted."""
  return sorted(_MODELS)


def model_family(name: str) -> str:
  """The family module that registers model `name`: 'resnest' for `resnest50d`."""
  if name not in _MODELS:
    raise UserError(f"model.name: unknown model {name!r}; choose one of: "
                    f"{', '.join(list_models())}")
  return _MODELS[name].__module__.rsplit('.', 1)[-1]


def model_fields(model: nn.Module) -> list[str]:
  """The overridable fields of a model module."""
  return [f.name for f in dataclasses.fields(model) if f.init and f.name not in _INTERNAL_FIELDS]


def _freeze(value: Any) -> Any:
  """Nested lists (as configs may give them) to tuples, so the module stays hashable."""
  if isinstance(value, (list, tuple)):
    return tuple(_freeze(v) for v in value)
  return value


def _as_dtype(value: Any) -> Any:
  if isinstance(value, str):
    if value not in _DTYPES:
      raise UserError(f"model.dtype: unknown dtype {value!r}; choose one of: "
                      f"{', '.join(_DTYPES)}")
    return jnp.dtype(value)
  return value


def _numbers(value: Any) -> Iterator[Any]:
  """The numbers in `value`, also inside (nested) tuples; bools are not numbers here."""
  if isinstance(value, tuple):
    for v in value:
      yield from _numbers(v)
  elif isinstance(value, (int, float)) and not isinstance(value, bool):
    yield value


def _number_range(field: str, integer: bool) -> tuple[Callable[[Any], bool], str]:
  """(test, description) of the values allowed for one number of model field `field`."""
  if integer:
    low = 1 if SIZE_FIELD.search(field) else 0
    return lambda v: low <= v <= _INT_MAX, f'an integer from {low} to {_INT_MAX}'
  if field.endswith('_rate'):
    return lambda v: 0.0 <= v < 1.0, 'in [0, 1)'
  if field == 'survival_prob':
    return lambda v: 0.0 < v <= 1.0, 'in (0, 1]; 1.0 disables stochastic depth'
  if field.endswith('_prob'):
    return lambda v: 0.0 <= v <= 1.0, 'in [0, 1]'
  return lambda v: 0.0 < v < math.inf, 'a finite number > 0'


def check_numbers(name: str, model: nn.Module, preset: nn.Module) -> None:
  """Raises UserError for a number of `model` outside its field's range (module docstring).

  A field is an integer field when the preset holds integers there (or, where the preset holds
  None, when the value is one); a float is refused in an integer field.
  """
  for field in model_fields(model):
    value = getattr(model, field)
    numbers = list(_numbers(value))
    if not numbers:
      continue
    preset_numbers = list(_numbers(getattr(preset, field)))
    integer = all(isinstance(v, int) for v in preset_numbers or numbers)
    allowed, description = _number_range(field, integer)
    entries = ' in every entry' if isinstance(value, tuple) else ''
    for number in numbers:
      if integer and not isinstance(number, int):
        raise UserError(f'model.{field}: {name!r} needs integers here, got {value!r}')
      if not allowed(number):
        raise UserError(f'model.{field}: must be {description}{entries}, got {value!r}')


def create_model(name: str, num_classes: int = 10, **overrides: Any) -> nn.Module:
  """Builds the registered model `name` with `num_classes` outputs.

  `overrides` set module fields; those that are None are ignored (the config's "model default").
  Lists (also nested) become tuples and a string `dtype` becomes a jnp dtype. Bad names, unknown
  fields and bad choice values raise UserError.
  """
  if name not in _MODELS:
    raise UserError(f"model.name: unknown model {name!r}; choose one of: "
                    f"{', '.join(list_models())}")
  model = _MODELS[name]()
  fields = model_fields(model)
  updates = {'num_classes': num_classes}
  if 'dtype' in fields:  # one spelling (np.dtype), so equal models hash equal for count caches
    updates['dtype'] = jnp.dtype(model.dtype)
  for key, value in overrides.items():
    if value is None:
      continue
    if key not in fields:
      raise UserError(f"model.{key}: model {name!r} has no field {key!r}; its fields are: "
                      f"{', '.join(fields)}")
    value = _freeze(value)
    if key == 'dtype':
      value = _as_dtype(value)
    updates[key] = value
  preset, model = model, model.clone(**updates)
  for key in fields:
    if key in layers.CHOICES:
      layers.check_choice(key, getattr(model, key))
  check_numbers(name, model, preset)
  return model


def modified_fields(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
  """The `overrides` (as `create_model` takes them) that change registered model `name` from its
  preset, in the module's field order; `dtype` is left out (precision, not architecture).

  Raises:
    UserError: an unknown model name.
  """
  if name not in _MODELS:
    raise UserError(f"model.name: unknown model {name!r}; choose one of: "
                    f"{', '.join(list_models())}")
  preset = _MODELS[name]()
  return {field: _freeze(overrides[field]) for field in model_fields(preset)
          if field != 'dtype' and overrides.get(field) is not None
          and _freeze(overrides[field]) != getattr(preset, field)}


def check_buildable(name: str, num_classes: int = 10,
                    input_shape: tuple[int, ...] = (1, 32, 32, 3), **overrides: Any) -> nn.Module:
  """`create_model(name, num_classes, **overrides)`, then, if `overrides` change the preset,
  built abstractly on `input_shape` (a trace, nothing computed; cached with the counts), so the
  family's own checks run now rather than after the data has loaded.

  Raises:
    UserError: from `create_model` or the family; any other error of the modified model too,
      naming the fields that modify it.
  """
  from jaxcls.models import macs  # pylint: disable=g-import-not-at-top  # macs imports layers

  model = create_model(name, num_classes, **overrides)
  if not modified_fields(name, overrides):
    return model  # the preset itself: every one is built by the tests
  given = {k: v for k, v in overrides.items() if v is not None}
  fields = ', '.join(f'model.{k}={v!r}' for k, v in given.items())
  try:
    variables = macs.abstract_variables(model, tuple(input_shape))
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    reason = (str(e).strip().splitlines() or [''])[0]
    raise UserError(f'model: {name!r} cannot be built with {fields} ({type(e).__name__}: '
                    f'{reason}); change those fields') from e
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    if not math.prod(leaf.shape):
      raise UserError(f'model: {name!r} with {fields or "its preset fields"} has an empty layer '
                      f'({jax.tree_util.keystr(path)} of shape {leaf.shape}); change those '
                      'fields')
  return model

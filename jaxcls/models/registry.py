"""Model registry (timm style): `@register_model` factories, picked by `config.model.name`.

A factory is a no-argument function named after the model that returns a linen Module with the
preset's field values; `create_model` then overrides fields by keyword, so every field of the
module is a config knob (`create_model('resnet18', stage_sizes=(1, 1, 1, 1))`).
"""

from collections.abc import Callable
import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcls.errors import UserError
from jaxcls.models import layers

_MODELS: dict[str, Callable[[], nn.Module]] = {}

# Fields that are not knobs: flax's own bookkeeping.
_INTERNAL_FIELDS = ('parent', 'name')
_DTYPES = ('float32', 'bfloat16', 'float16')


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
  model = model.clone(**updates)
  for key in fields:
    if key in layers.CHOICES:
      layers.check_choice(key, getattr(model, key))
  if 'survival_prob' in fields and not 0.0 < model.survival_prob <= 1.0:
    raise UserError(f'model.survival_prob: {model.survival_prob} is not in (0, 1]; '
                    '1.0 disables stochastic depth')
  return model

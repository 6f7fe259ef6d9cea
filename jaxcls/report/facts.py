"""Configs and the facts of their models: params, BatchNorm statistics and MACs, no data needed.

"Params" is the Flax `params` (trainable) count; "FLOPs/2" is the multiply-accumulates of the
conv and Dense layers only, at batch 1 on the dataset's input shape (`models.count_macs`), not
XLA's cost analysis (SPEC section 0).
"""

import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from jaxcls.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Input shape and classes of the datasets whose facts are fixed, so a report needs no data.
KNOWN_DATASETS = {
    'cifar10': ((32, 32, 3), 10),
    'cifar100': ((32, 32, 3), 100),
    'svhn_cropped': ((32, 32, 3), 10),
    'fashion_mnist': ((28, 28, 1), 10),
    'mnist': ((28, 28, 1), 10),
    'kmnist': ((28, 28, 1), 10),
    'digits': ((32, 32, 1), 10),  # jaxcls' embedded digits, upsampled to 32x32
}


# --- Configs and their model facts.

def _ensure_repo_on_path() -> None:
  # Config files import their siblings as `from configs import default`.
  if REPO not in sys.path:
    sys.path.insert(0, REPO)


def load_config(target: str) -> ml_collections.ConfigDict:
  """The config of `path/to/config.py[:variants]`, as `main.py --config` would build it."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  path, *arg = target.split(':', 1)
  if not os.path.isfile(path):
    raise UserError(f"target {target!r}: no such config file '{path}'; give a config file "
                    '(configs/x.py[:variants]) or a workdir')
  _ensure_repo_on_path()
  spec = importlib.util.spec_from_file_location('jaxcls_report_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  # As ml_collections' config_flags: the text after the colon is get_config's one argument.
  return ml_collections.ConfigDict(module.get_config(*arg))


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Iterable[str]) -> ml_collections.ConfigDict:
  """Applies `--config.a.b=value` strings (main.py's syntax; values as Python literals)."""
  import ast  # pylint: disable=g-import-not-at-top

  for override in overrides:
    key, sep, text = override.removeprefix('--config.').partition('=')
    if not sep or not key:
      raise UserError(f'{override}: expected --config.FIELD=VALUE')
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text  # a bare word: a string such as bfloat16
    target = config
    *path, leaf = key.split('.')
    try:
      for part in path:
        target = target[part]
      target[leaf] = value
    except (KeyError, TypeError, ValueError) as e:
      raise UserError(f'--config.{key}: cannot set to {text!r} ({e})') from e
  return config


def input_spec(config: ml_collections.ConfigDict) -> tuple[tuple[int, int, int], int]:
  """(image shape HWC, number of classes) of `config.dataset`, decoding nothing if it can."""
  dataset = config.dataset
  known = KNOWN_DATASETS.get(dataset.name)
  if known is not None:
    shape, num_classes = known
  else:  # not a fixed dataset: load it as a run would (decoded once, then cached)
    from jaxcls import data  # pylint: disable=g-import-not-at-top

    _, _, info = data.load_dataset(dataset)
    shape, num_classes = info.image_shape, info.num_classes
  return tuple(shape), dataset.get('num_classes') or num_classes


def model_overrides(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.model` minus its name and unset fields: `create_model`'s keyword arguments."""
  return {k: v for k, v in config.model.items() if k != 'name' and v is not None}


@dataclasses.dataclass(frozen=True)
class ModelFacts:
  params: int  # Flax `params`: trainable
  batch_stats: int  # BatchNorm moving statistics (Keras counts them as parameters)
  macs: int  # conv + Dense multiply-accumulates at batch 1: seed A's FLOPs/2


def model_facts(model_name: str, overrides: dict[str, Any], image_shape: Sequence[int],
                num_classes: int) -> ModelFacts:
  from jaxcls import models  # pylint: disable=g-import-not-at-top

  model = models.create_model(model_name, num_classes=num_classes, **overrides)
  shape = (1, *image_shape)
  params, batch_stats = models.count_params(model, shape)
  return ModelFacts(params, batch_stats, models.count_macs(model, shape))


def config_facts(config: ml_collections.ConfigDict) -> ModelFacts:
  shape, num_classes = input_spec(config)
  return model_facts(config.model.name, model_overrides(config), shape, num_classes)

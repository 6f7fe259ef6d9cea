"""What a run is called in results.json, the tables and the plots.

A run is labelled by its model's registry name, and when its config changed the model's fields
from the registered preset, by those fields too, so a narrowed network never passes for the
published one:

    shake_shake26_2x96d                                  the registered preset
    shake_shake26_2x96d (modified: base_width=16)        --config.model.base_width=16
"""

import os
from typing import Any

import ml_collections

from jaxcls.report.facts import model_overrides


def model_label(name: str, overrides: dict[str, Any]) -> str:
  """`name`, plus `(modified: field=value, ...)` for the fields of `overrides` that differ from
  the registered preset (`models.registry.modified_fields`)."""
  from jaxcls.models import registry  # pylint: disable=g-import-not-at-top  # imports flax

  modified = registry.modified_fields(name, overrides)
  if not modified:
    return name
  shown = ', '.join(f'{k}={v if isinstance(v, str) else repr(v)}' for k, v in modified.items())
  return f'{name} (modified: {shown})'


def run_label(config: Any) -> str:
  """The label of a run of `config` (a ConfigDict, or the dict of a workdir's config.json)."""
  if not isinstance(config, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(config)
  return model_label(config.model.name, model_overrides(config))


def workdir_label(workdir: str, config: Any) -> str:
  """`runs/a/` with a config of a narrowed resnet18 -> `a (resnet18 (modified: base_width=8))`."""
  return f'{os.path.basename(os.path.normpath(workdir))} ({run_label(config)})'

"""Orbax checkpoints under `workdir/checkpoints`: the train state and a JSON record of the run.

Each checkpoint step holds two items: `state` (the full `TrainState`, restored straight onto
its shardings against an abstract state from `jax.eval_shape`) and `meta` (JSON: the model
name, the shapes of every parameter and batch statistic, the elapsed wall and train time).
The shapes are what makes "resume this workdir with another model" a one-line error rather
than an Orbax traceback. Orbax writes each step to a temporary directory and renames it when
complete, so a half-written step is never listed; a step that fails to restore anyway (a
corrupt file) is skipped in favour of the one before it, with a warning.
"""

from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from jaxcls.errors import UserError


def shape_signature(tree: Any) -> dict[str, list[int]]:
  """`{'params/Conv_0/kernel': [3, 3, 3, 16], ...}` for any tree of arrays or shape structs."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path, simple=True, separator='/'): list(leaf.shape)
          for path, leaf in flat}


def _first_difference(saved: dict, wanted: dict) -> str:
  for key in sorted(set(saved) | set(wanted)):
    if saved.get(key) != wanted.get(key):
      return f'{key}: checkpoint {saved.get(key, "absent")}, config {wanted.get(key, "absent")}'
  return ''


class Checkpoints:
  """The checkpoints of one workdir: save every N steps, keep the last K, restore the newest."""

  def __init__(self, workdir: str, keep: int = 3, asynchronous: bool = True):
    self.directory = epath.Path(workdir) / 'checkpoints'
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=asynchronous)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=('state', 'meta'))

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: dict, force: bool = True) -> None:
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    meta=ocp.args.JsonSave(meta)), force=force)

  def restore_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def restore(self, abstract_state: Any, variables: Any) -> Optional[tuple[Any, dict]]:
    """Newest restorable (state, meta), or None when the workdir has no checkpoint.

    `variables` are the abstract model variables of the current config, checked against the
    shapes the checkpoint was written with.
    """
    wanted = shape_signature(variables)
    for step in reversed(self.steps()):
      try:
        meta = self.restore_meta(step)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('Checkpoint %s/%d is unreadable (%s); trying the one before.',
                        self.directory, step, e)
        continue
      if meta.get('variables') != wanted:
        raise UserError(
            f"{self.directory} holds checkpoints of model '{meta.get('model_name')}' whose "
            f'shapes differ from this config ({_first_difference(meta["variables"], wanted)}); '
            'use a new --workdir or the model settings the run started with')
      try:
        restored = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('Checkpoint %s/%d failed to restore (%s); trying the one before.',
                        self.directory, step, e)
        continue
      return restored['state'], meta
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def load_variables(workdir: str) -> dict:
  """`{'params': ..., 'batch_stats': ...}` from the newest checkpoint of another run, on host."""
  directory = epath.Path(workdir)
  if (directory / 'checkpoints').exists():
    directory = directory / 'checkpoints'
  if not directory.exists():
    raise UserError(f"init_from: '{workdir}' does not exist; give the workdir of a finished run")
  with ocp.CheckpointManager(directory, item_names=('state', 'meta'),
                             options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    step = manager.latest_step()
    if step is None:
      raise UserError(f"init_from: '{workdir}' holds no checkpoint; give the workdir of a run")
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  state = state['state']
  return {'params': state['params'], 'batch_stats': state.get('batch_stats', {})}

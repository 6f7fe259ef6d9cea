"""Orbax checkpoints under `workdir/checkpoints`: the train state and a JSON record of the run.

Each checkpoint step holds two items: `state` (the full `TrainState`, restored straight onto
its shardings against an abstract state from `jax.eval_shape`) and `meta` (JSON: the model
name, the shapes of every parameter and batch statistic, the elapsed wall and train time).
The shapes are what makes "resume this workdir with another model" a one-line error rather
than an Orbax traceback.

Faults: Orbax writes each step to a temporary directory and renames it when complete, so a
process killed mid-write leaves no listed step (the temporary directory is removed at the next
start). A listed step that fails to restore anyway (a corrupt or truncated file) is skipped in
favour of the one before it, with a warning, and moved to `workdir/corrupt_checkpoints/` rather
than deleted: the run then writes that step number again, and nothing is lost. A failure while
writing is a `UserError` naming the directory; the steps written before it stay.
"""

import contextlib
import sys
from typing import Any, Iterator, Optional

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from jaxcls.errors import UserError

CORRUPT_DIR = 'corrupt_checkpoints'


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


def _brief(error: BaseException, limit: int = 160) -> str:
  """An exception as one short line (Orbax and TensorStore messages span many)."""
  text = ' '.join(str(error).split()) or type(error).__name__
  return text if len(text) <= limit else text[:limit - 3] + '...'


class Checkpoints:
  """The checkpoints of one workdir: save every N steps, keep the last K, restore the newest."""

  def __init__(self, workdir: str, keep: int = 3, asynchronous: bool = True):
    self.directory = epath.Path(workdir) / 'checkpoints'
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=asynchronous,
        cleanup_tmp_directories=True)  # what a killed save left behind
    self._in_flight: Optional[int] = None  # the step whose asynchronous write may be running
    self._closed = False
    with self._writing('open'):
      # Orbax would only find out at the first save that the path is not a directory.
      self.directory.mkdir(parents=True, exist_ok=True)
      self.manager = ocp.CheckpointManager(self.directory, options=options,
                                           item_names=('state', 'meta'))

  @contextlib.contextmanager
  def _writing(self, what: str) -> Iterator[None]:
    """Any failure to write becomes one line naming the directory; Orbax raises many types.

    `save` finishes the write before it starts its own, so no earlier write is in flight when
    this raises: the steps written before stay complete.
    """
    try:
      yield
    except UserError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(
          f'checkpoints: cannot {what} in {self.directory} ({type(e).__name__}: {_brief(e)}); '
          'free disk space or make the directory writable, then rerun to resume from the last '
          'checkpoint') from e

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Starts writing `step` (asynchronously: `wait` or `close` to finish).

    The write of the step before is finished first, so a failure is reported with the step
    whose write failed.
    """
    self.wait()
    with self._writing(f'save step {step}'):
      self._in_flight = step
      self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                      meta=ocp.args.JsonSave(meta)), force=True)

  def wait(self) -> None:
    """Finishes the write in flight; raises UserError naming its step if it failed."""
    what = 'finish writing' if self._in_flight is None else f'save step {self._in_flight}'
    with self._writing(what):
      self.manager.wait_until_finished()
    self._in_flight = None

  def restore_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  def restore(self, abstract_state: Any, variables: Any) -> Optional[tuple[Any, dict]]:
    """Newest restorable (state, meta), or None when the workdir has no checkpoint.

    `variables` are the abstract model variables of the current config, checked against the
    shapes the checkpoint was written with. Newer steps that fail to restore are moved aside.
    """
    wanted = shape_signature(variables)
    unreadable = []
    for step in reversed(self.steps()):
      try:
        meta = self.restore_meta(step)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('Checkpoint %s/%d is unreadable (%s); trying the one before.',
                        self.directory, step, _brief(e))
        unreadable.append((step, e))
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
                        self.directory, step, _brief(e))
        unreadable.append((step, e))
        continue
      self._move_aside([s for s, _ in unreadable])
      return restored['state'], meta
    if unreadable:
      step, error = unreadable[0]
      raise UserError(
          f'{self.directory}: no checkpoint can be restored (steps '
          f'{", ".join(str(s) for s, _ in reversed(unreadable))}; step {step}: {_brief(error)}); '
          'move the directory away to start over, or use a new --workdir')
    return None

  def _move_aside(self, steps: list[int]) -> None:
    """Moves unreadable steps out of Orbax's sight (kept for inspection, never deleted), so
    the resumed run can write those step numbers again."""
    if not steps:
      return
    corrupt = self.directory.parent / CORRUPT_DIR
    if jax.process_index() == 0:
      with self._writing('move unreadable steps aside'):
        corrupt.mkdir(exist_ok=True)
        for step in steps:
          target, n = corrupt / str(step), 1
          while target.exists():
            target, n = corrupt / f'{step}.{n}', n + 1
          (self.directory / str(step)).rename(target)
          logging.warning('Moved unreadable checkpoint step %d to %s.', step, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('jaxcls_checkpoint_move_aside')
    self.manager.reload()

  def close(self) -> None:
    """Finishes the write in flight (raising UserError if it failed) and stops Orbax's
    threads."""
    if self._closed:
      return
    try:
      self.wait()
    finally:
      self.shutdown()

  def shutdown(self) -> None:
    """Stops Orbax's threads without raising, for the way out of an error: a process whose
    run failed must still exit. A no-op once closed."""
    if self._closed:
      return
    self._closed = True
    for step in (self.manager.wait_until_finished, self.manager.close):
      try:
        step()
      except Exception as e:  # pylint: disable=broad-except  # the first error is reported
        logging.warning('While closing the checkpoints of %s: %s', self.directory, _brief(e))


def load_variables(workdir: str) -> dict:
  """`{'params': ..., 'batch_stats': ...}` from the newest checkpoint of a run, on one device,
  whatever devices the run had."""
  directory = epath.Path(workdir)
  if (directory / 'checkpoints').exists():
    directory = directory / 'checkpoints'
  if not directory.exists():
    raise UserError(f"init_from: '{workdir}' does not exist; give the workdir of a finished run")
  handlers = {'state': ocp.StandardCheckpointHandler(), 'meta': ocp.JsonCheckpointHandler()}
  with ocp.CheckpointManager(directory, item_handlers=handlers,
                             options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    step = manager.latest_step()
    if step is None:
      raise UserError(f"init_from: '{workdir}' holds no checkpoint; give the workdir of a run")
    # Onto one local device: the run that wrote it may have had other devices (or processes).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          manager.item_metadata(step)['state'])
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  state = state['state']
  return {'params': state['params'], 'batch_stats': state.get('batch_stats', {})}


_quieted = False


def quiet_orbax() -> None:
  """Keeps Orbax's and TensorStore's own error output off the console (`main.py` without
  `--debug`): every failure they report reaches the user as one `UserError` line from this
  module instead.

  Drops log records from Orbax's modules and from asyncio (which only Orbax uses here: "Task
  exception was never retrieved" for the reads a failed restore abandoned), and the "Event loop
  is closed" errors that TensorStore's threads raise into Python when a failed restore has
  already closed its event loop (dozens per unreadable checkpoint; harmless). Installing it
  twice is a no-op.
  """
  global _quieted  # pylint: disable=global-statement
  if _quieted:
    return
  _quieted = True
  logging.get_absl_handler().python_handler.addFilter(
      lambda record: '/orbax/' not in record.pathname and record.name != 'asyncio')
  previous = sys.unraisablehook

  def hook(unraisable) -> None:
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
      return
    previous(unraisable)

  sys.unraisablehook = hook

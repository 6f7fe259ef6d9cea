"""A workdir belongs to one run: its lock, the fields a resume may not change, safe writes.

Rules (docs/SCALING.md, "Workdirs"):
- One process writes a workdir at a time. `WorkdirLock` holds an exclusive `flock` on
  `workdir/.lock` for the life of the run and writes who holds it there; a second run on the
  same workdir fails at once naming that process. The kernel drops the lock when the holder
  dies, so a run killed with `kill -9` never leaves it stuck. (Only process 0 of a multi-process
  run takes it.) `flock` is advisory and local: on NFS it may not exclude other hosts.
- Rerunning a workdir resumes the run it holds, so the fields that define that run (model, data
  and splits, batch size, epochs, schedule, optimizer, augmentation, mixing, seed, dtype, ...)
  must equal those in its `config.json`; `check_same_run` names every change as old -> new
  before anything in the workdir is touched. Fields that only say how often to log, evaluate or
  save, where the data lies, or how the steps are fed (`FREE_FIELDS`) may change freely. A new
  field that a workdir's older `config.json` lacks is not compared: new fields default to the
  old behaviour.
- Files are replaced atomically through a temporary file with a unique name created in the
  same directory (`write_atomic`): a link planted under a predictable name is never followed,
  a killed write leaves the old file, and a failed write (a full disk) leaves no temporary file.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import tempfile
from typing import Any

from etils import epath

from jaxcls.errors import UserError

LOCK_NAME = '.lock'

# Dotted config fields that may differ between the sessions of one run: cadence, locations,
# feeding and evaluation settings that leave the trained weights as they are.
FREE_FIELDS = (
    'log_every_steps', 'progress_every_secs', 'eval_every_epochs', 'checkpoint_every_steps',
    'keep_checkpoints', 'steps_per_dispatch', 'data_feed', 'eval_batch_size', 'init_from',
    'nan_policy', 'dataset.path', 'dataset.data_dir', 'dataset.cache_dir', 'eval.',
    'expected_gpu_hours',
)


def prepare(path: epath.Path) -> None:
  """Creates the workdir and proves it writable before any data is read."""
  try:
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix='.write-test-')
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise UserError(f'--workdir: cannot write to {path} ({e.strerror or e}); choose a writable '
                    'directory') from e


def write_atomic(path: epath.Path, text: str) -> None:
  """Replaces `path` with `text` whole or not at all.

  Raises UserError naming the file when it cannot be written (a full disk, a read-only
  directory); the old file and the directory are then as they were.
  """
  directory = os.fspath(path.parent)
  tmp = None
  try:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{path.name}.', suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    os.replace(tmp, os.fspath(path))
  except OSError as e:
    if tmp is not None:
      try:
        os.unlink(tmp)
      except OSError:
        pass
    raise UserError(f'cannot write {path} ({e.strerror or e}); free disk space or make '
                    f'{directory} writable, then run the same command again') from e


class WorkdirLock:
  """An exclusive lock on a workdir for the life of one run (a context manager).

  Raises UserError naming the holder (pid, host, start time, command) when another process
  holds it.
  """

  def __init__(self, path: epath.Path):
    self.path = epath.Path(path) / LOCK_NAME
    self._file = None

  def __enter__(self) -> 'WorkdirLock':
    self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()

  def acquire(self) -> None:
    f = open(os.fspath(self.path), 'a+', encoding='utf-8')  # pylint: disable=consider-using-with
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      f.seek(0)
      holder = f.read().strip()
      f.close()
      if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise UserError(f'--workdir: cannot lock {self.path.parent} ({e.strerror or e})') from e
      raise UserError(f'--workdir: {self.path.parent} is in use by {_describe(holder)}; wait '
                      'for that run to end (or stop it), or use another --workdir') from e
    f.seek(0)
    f.truncate()
    f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                        'started': datetime.datetime.now().isoformat(timespec='seconds'),
                        'command': ' '.join(sys.argv)}) + '\n')
    f.flush()
    self._file = f

  def release(self) -> None:
    if self._file is not None:
      self._file.close()  # closing the descriptor drops the flock
      self._file = None


def _describe(holder: str) -> str:
  try:
    info = json.loads(holder)
    return (f"process {info['pid']} on {info['host']} (started {info['started']}: "
            f"{info['command']})")
  except (ValueError, KeyError, TypeError):
    return 'another process'


def _flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  if isinstance(tree, dict):
    flat = {}
    for key, value in tree.items():
      flat.update(_flatten(value, f'{prefix}{key}.'))
    return flat
  return {prefix[:-1]: tree}


def _is_free(field: str) -> bool:
  return any(field == f or (f.endswith('.') and field.startswith(f)) for f in FREE_FIELDS)


def _holds_a_run(path: epath.Path) -> bool:
  checkpoints = path / 'checkpoints'
  has_steps = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
  return has_steps or (path / 'results.json').exists()


def changed_fields(saved: dict, config_json: dict) -> list[tuple[str, Any, Any]]:
  """`(field, saved value, new value)` for each run-defining field that differs."""
  old, new = _flatten(saved), _flatten(config_json)
  return [(k, old[k], new[k]) for k in sorted(old)
          if k in new and not _is_free(k) and old[k] != new[k]]


def check_same_run(path: epath.Path, config) -> None:
  """Raises UserError if `path` holds a run whose run-defining fields differ from `config`.

  Reads `path/config.json` only when the workdir holds checkpoints or results; touches nothing.
  """
  saved_path = path / 'config.json'
  if not saved_path.exists() or not _holds_a_run(path):
    return
  try:
    saved = json.loads(saved_path.read_text())
  except (OSError, ValueError):
    return  # unreadable: the checkpoint's own record of the run still guards the resume
  changes = changed_fields(saved, json.loads(config.to_json_best_effort()))
  if changes:
    listed = '; '.join(f'{k}: {_show(a)} -> {_show(b)}' for k, a, b in changes)
    raise UserError(
        f'--workdir: {path} holds a run with other settings ({listed}); it was left as it is. '
        'Rerun with the settings it started with to resume it, or use a new --workdir (add '
        f'--config.init_from={path} to start from its weights)')


def _show(value: Any) -> str:
  return json.dumps(value) if not isinstance(value, str) else repr(value)


def check_step_meaning(meta: dict, *, batch_size: int, train_size: int) -> None:
  """Raises UserError if a checkpoint's steps were counted with another batch or split size."""
  saved = {'batch_size': meta.get('batch_size'), 'train_size': meta.get('train_size')}
  now = {'batch_size': batch_size, 'train_size': train_size}
  changes = [f'{k}: {saved[k]} -> {now[k]}' for k in now
             if saved[k] is not None and saved[k] != now[k]]
  if changes:
    raise UserError(
        f'--workdir: its checkpoints count steps of another run ({"; ".join(changes)}), so step '
        f"{meta.get('step')} would mean other images; use the batch size and train split the "
        'run started with, or a new --workdir')


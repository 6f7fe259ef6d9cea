"""Records: each published figure as a small JSON file under docs/runs/, with its command,
hardware, date and notes."""

import datetime
import glob
import json
import os
import platform
from typing import Optional

from jaxcls.errors import UserError
from jaxcls.report.runs import read_workdir

RUNS_DIR = os.path.join('docs', 'runs')
RESULTS_DOC = os.path.join('docs', 'RESULTS.md')


# --- Records: the published figures, one small JSON file each under docs/runs/.

def hardware_description() -> str:
  """The accelerator(s) JAX sees and the host CPU, e.g. `cpu (AMD EPYC, 2 cores)`."""
  import jax  # pylint: disable=g-import-not-at-top

  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  host = f'{cpu}, {os.cpu_count()} cores'
  devices = jax.devices()
  if devices[0].platform == 'cpu':
    return f'CPU: {host}'
  return f'{len(devices)}x {devices[0].device_kind}; host {host}'


def busy_cores(seconds: float = 1.0) -> Optional[float]:
  """How many cores other processes keep busy: /proc/stat sampled over `seconds` while this
  process sleeps. None where /proc/stat does not exist."""
  import time  # pylint: disable=g-import-not-at-top

  def sample() -> tuple[int, int]:
    with open('/proc/stat') as f:
      fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle

  try:
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
  except OSError:
    return None
  if total1 == total0:
    return 0.0
  return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def load_note(busy: Optional[float]) -> str:
  """'shared with other jobs (...)' when other processes kept a quarter core or more busy."""
  if busy is None or busy < 0.25:
    return ''
  return (f'shared with other jobs (about {busy:.1f} of {os.cpu_count()} cores busy with other '
          'processes)')


def record_fields(command: str, notes: str = '',
                  busy: Optional[float] = None) -> dict[str, str]:
  """`command`, `hardware`, `date` (today) and `notes` of a new record; `busy` (other
  processes' cores, `busy_cores()`) adds the load note."""
  notes = '; '.join(n for n in (notes, load_note(busy)) if n)
  return {'command': command, 'hardware': hardware_description(),
          'date': datetime.date.today().isoformat(), 'notes': notes}


def write_record(record: dict, name: str, runs_dir: str = RUNS_DIR) -> str:
  os.makedirs(runs_dir, exist_ok=True)
  path = os.path.join(runs_dir, f'{name}.json')
  with open(path, 'w') as f:
    f.write(json.dumps(record, indent=2) + '\n')
  return path


def record_run(workdir: str, name: str, command: str, notes: str = '',
               runs_dir: str = RUNS_DIR) -> str:
  """Stores a finished run as `runs_dir/name.json`: its results.json and config.json with the
  command, hardware, date and notes. The hardware is this machine's: record where it ran."""
  config, results = read_workdir(workdir)
  if results is None:
    raise UserError(f'--record-run: {workdir!r} has no results.json; record a finished run')
  record = {'kind': 'run', 'name': name, **record_fields(command, notes),
            'results': results, 'config': config}
  return write_record(record, name, runs_dir)


def load_records(runs_dir: str = RUNS_DIR) -> list[dict]:
  records = []
  for path in sorted(glob.glob(os.path.join(runs_dir, '*.json'))):
    with open(path) as f:
      record = json.load(f)
    for key in ('kind', 'command', 'hardware', 'date'):
      if key not in record:
        raise UserError(f'{path}: a record needs {key!r} (see the header of {RESULTS_DOC})')
    record.setdefault('name', os.path.splitext(os.path.basename(path))[0])
    records.append(record)
  return records

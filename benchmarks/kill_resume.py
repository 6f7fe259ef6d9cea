r"""kill -9 at random moments, rerun, compare bitwise with an uninterrupted run (CPU).

    python benchmarks/kill_resume.py --kills 20

Runs `main.py` on a tiny config (a width-4 ResNetV2 on 256 digits, 32 steps with a checkpoint
every 4 and an evaluation every 8) once to completion as the reference, then `--kills` times:
start the same command in a fresh workdir, SIGKILL it at a random moment of its training phase
(mid-step, mid-eval, mid-checkpoint-write, after the results), rerun the command to completion
and compare the final parameters and batch statistics with the reference, bit for bit.

Prints one JSON line: `kills` (delivered), `identical` (resumed runs equal to the reference),
`steps`, `reference_repeatable` (a second uninterrupted run equals the first), `resumed_from`
(the latest checkpoint step each kill left: how the kills spread over the run),
`partial_checkpoint_writes` (kills that left a half-written checkpoint behind), `seconds`. All
runs share a temporary XLA compilation cache, so only the first one compiles. `--record NAME`
stores the line as `docs/runs/bench-NAME.json` for docs/RESULTS.md.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import common  # pylint: disable=g-import-not-at-top
from benchmarks import processes  # pylint: disable=g-import-not-at-top

# 8 steps per epoch, 4 epochs; checkpoints every 4 steps (keep 3), evaluation every epoch.
TINY = ('--config.dataset.train_split=train[:256]', '--config.dataset.eval_split=test[:120]',
        '--config.model.base_width=4', '--config.model.stem_width=4', '--config.batch_size=32',
        '--config.eval_batch_size=60', '--config.num_epochs=4', '--config.log_every_steps=2',
        '--config.checkpoint_every_steps=4', '--config.progress_every_secs=1e9')
STEPS = 32
FIRST_LOG = 'learning_rate='  # in every train log line (clu's logging writer: `[step] ...`)


def command(workdir: str) -> list[str]:
  return [sys.executable, str(REPO / 'main.py'), '--config', str(REPO / 'configs/quickstart.py'),
          f'--workdir={workdir}', *TINY]


def environment(cache_dir: str) -> dict[str, str]:
  return {**os.environ, 'JAX_PLATFORMS': 'cpu',
          'JAX_COMPILATION_CACHE_DIR': os.path.join(cache_dir, 'xla'),
          'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
          'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES': '0',
          'JAXCLS_CACHE_DIR': os.path.join(cache_dir, 'data')}


def run_to_end(workdir: str, env: dict, log: pathlib.Path, timeout: float = 600,
               command: Callable[[str], list[str]] = command) -> None:
  with open(log, 'w') as out:
    returncode = processes.run(command(workdir), stdout=out, stderr=subprocess.STDOUT, env=env,
                               cwd=REPO, timeout=timeout).returncode
  if returncode:
    raise RuntimeError(f'{" ".join(command(workdir))} exited {returncode}; see {log}')


def wait_for(text: str, process: subprocess.Popen, log: pathlib.Path, timeout: float) -> None:
  """Returns once `text` is in `log` (or the process has ended)."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if text in log.read_text() or process.poll() is not None:
      return
    time.sleep(0.01)
  process.kill()
  raise RuntimeError(f'no "{text}" in {log} after {timeout} s')


def final_variables(workdir: str, steps: int = STEPS) -> list[Any]:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxcls import checkpoint  # pylint: disable=g-import-not-at-top
  results = json.loads((pathlib.Path(workdir) / 'results.json').read_text())
  if results['step'] != steps:
    raise RuntimeError(f'{workdir}: results.json reports step {results["step"]}, not {steps}')
  return [np.asarray(x) for x in jax.tree.leaves(checkpoint.load_variables(workdir))]


def trial(index: int, root: str, env: dict, reference: list[Any], seed: int,
          steps: int = STEPS, command: Callable[[str], list[str]] = command) -> Optional[dict]:
  """One kill and resume of `command(workdir)`, a run of `steps` steps that logs every 2;
  None when the run ended before the kill (no kill delivered).

  The kill comes a uniform 0-0.3 s after a uniformly chosen train log line (a checkpoint or an
  evaluation follows some of them) or after the final `Finished` line: spread over the run by
  progress, whatever the machine's speed.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = random.Random(seed * 1000 + index)
  workdir = os.path.join(root, f'trial{index}')
  log = pathlib.Path(root, f'trial{index}.log')
  after = rng.choice([f'[{step}] {FIRST_LOG}' for step in range(2, steps + 1, 2)]
                     + ['] Finished: '])
  delay = rng.uniform(0, 0.3)
  with open(log, 'w') as out, processes.spawned(command(workdir), stdout=out,
                                                stderr=subprocess.STDOUT, env=env,
                                                cwd=REPO) as process:
    wait_for(after, process, log, 600)
    time.sleep(delay)
    if process.poll() is not None:
      return None
    process.send_signal(signal.SIGKILL)
    process.wait()
  checkpoints = pathlib.Path(workdir, 'checkpoints')
  names = [p.name for p in checkpoints.iterdir()] if checkpoints.exists() else []
  saved = [int(n) for n in names if n.isdigit()]
  partial = any('tmp' in n for n in names)
  run_to_end(workdir, env, pathlib.Path(root, f'trial{index}.resume.log'), command=command)
  resumed = final_variables(workdir, steps)
  same = len(resumed) == len(reference) and all(
      a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(resumed, reference))
  return {'identical': same, 'resumed_from': max(saved, default=0), 'partial': partial}


def main(argv: Optional[list[str]] = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--kills', type=int, default=20)
  parser.add_argument('--jobs', type=int, default=2, help='trials run side by side')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--cache_dir', default=None,
                      help='compilation and data cache shared by the runs (default: temporary)')
  common.add_record_flags(parser)
  args = parser.parse_args(argv)
  if args.record:
    common.measure_background()
  import numpy as np  # pylint: disable=g-import-not-at-top
  start = time.time()
  with tempfile.TemporaryDirectory(prefix='kill_resume-') as root:
    env = environment(args.cache_dir or root)
    run_to_end(os.path.join(root, 'reference'), env, pathlib.Path(root, 'ref.log'))
    # Same config and seed: a second uninterrupted run must be bitwise equal to the first.
    run_to_end(os.path.join(root, 'again'), env, pathlib.Path(root, 'again.log'))
    reference = final_variables(os.path.join(root, 'reference'))
    again = final_variables(os.path.join(root, 'again'))
    repeatable = all(np.array_equal(a, b) for a, b in zip(reference, again))
    outcomes, index = [], 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
      while len(outcomes) < args.kills and index < 3 * args.kills:
        batch = range(index, index + args.kills - len(outcomes))
        index += len(batch)
        futures = [pool.submit(trial, i, root, env, reference, args.seed) for i in batch]
        outcomes += [o for o in (f.result() for f in futures) if o is not None]
  result = {
      'kills': len(outcomes), 'identical': sum(o['identical'] for o in outcomes),
      'steps': STEPS, 'reference_repeatable': repeatable,
      'resumed_from': dict(sorted(collections.Counter(o['resumed_from'] for o in outcomes)
                                  .items())),
      'partial_checkpoint_writes': sum(o['partial'] for o in outcomes),
      'seconds': round(time.time() - start, 1),
  }
  return common.emit(result, 'kill_resume', args, argv)


if __name__ == '__main__':
  outcome = main()
  sys.exit(0 if outcome['identical'] == outcome['kills'] and outcome['reference_repeatable']
           else 1)

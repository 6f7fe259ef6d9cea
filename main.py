r"""Trains a model: `python main.py --config configs/quickstart.py --workdir runs/quickstart`.

Any config field can be overridden (`--config.optim.lr=0.2 --config.num_epochs=10`); a recipe
file takes comma-separated variants after a colon (`--config configs/resnet50b.py:sd,htd,cutmix`).
Running the same command again resumes from the newest checkpoint in `--workdir`; SIGTERM or
Ctrl-C saves a checkpoint at the current step and exits 0 (a second one aborts at once).

Several processes (hosts) run one job with the same command plus `--coordinator_address`,
`--num_processes` and `--process_id`, or under `srun` / `mpirun` with no extra flags; see
docs/SCALING.md.

Exit status: 0 finished or stopped by a signal with a checkpoint; 2 bad input or a fault the
user must fix (one `error:` line on stderr); 130 interrupted twice.
"""

import logging as std_logging
import os
import re
import sys

# TensorFlow (imported only by a TFDS source, and optional) must not flood the console.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Training config file (and variants).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.json.')
flags.DEFINE_bool('debug', False, 'Show the full traceback of input errors.')
flags.DEFINE_string('coordinator_address', None,
                    'host:port of process 0, for a run over several processes (hosts).')
flags.DEFINE_integer('num_processes', None, 'Number of processes of a multi-process run.')
flags.DEFINE_integer('process_id', None, 'This process: 0 .. num_processes - 1.')
flags.mark_flags_as_required(['config', 'workdir'])


def _one_line(error: BaseException) -> str:
  """Config-flag errors arrive as chained KeyErrors with newlines; say them in one line."""
  if isinstance(error, (KeyError, AttributeError)):
    root = error
    while root.__context__ is not None:
      root = root.__context__
    key = root.args[0] if root.args else '?'
    hint = re.search(r'Did you mean "[^"]+"', ' '.join(map(str, error.args)))
    flag = next((a.split('=', 1)[0] for a in sys.argv
                 if re.match(rf'--config\..*\b{re.escape(str(key))}(\.|=|$)', a)), '--config')
    return f"{flag}: no such config field '{key}'" + (f' ({hint.group(0)}?)' if hint else '')
  missing = re.search(r"No such file or directory: '([^']+)'", str(error))
  if missing:
    return f"--config: no such config file '{missing.group(1)}'"
  return ' '.join(str(error).split())


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but every bad flag, config file or override is one line and exit 2."""
  try:
    rest = FLAGS(argv)
    FLAGS.config.keys()  # the config file is loaded lazily: fail here, not mid-run
    return rest
  except Exception as e:  # pylint: disable=broad-except
    if '--debug' in argv:
      raise
    print(f'error: {_one_line(e)}', file=sys.stderr)
    sys.exit(2)


def _quiet_libraries(record) -> bool:
  """INFO lines from jaxcls and clu (metrics, progress) only; every library's warnings."""
  return (record.levelno >= std_logging.WARNING or '/jaxcls/' in record.pathname
          or '/clu/' in record.pathname or record.pathname == __file__)


def run(config, workdir: str, *, debug: bool = False, coordinator_address: str | None = None,
        num_processes: int | None = None, process_id: int | None = None) -> int:
  """Joins the processes of a multi-process run, trains; returns the exit status.

  Input errors (`UserError`) are printed as one `error:` line unless `debug`.
  """
  from jaxcls import parallel, train  # pylint: disable=g-import-not-at-top
  from jaxcls.errors import UserError  # pylint: disable=g-import-not-at-top

  try:
    parallel.initialize_distributed(coordinator_address, num_processes, process_id)
    logging.info('Config:\n%s', config)
    train.train_and_evaluate(config, workdir)
  except UserError as e:
    if debug:
      raise
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    if debug:
      raise
    print('error: interrupted twice, so no checkpoint was saved; run the same command again to '
          'resume from the last one', file=sys.stderr)
    return 130
  return 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.get_absl_handler().python_handler.addFilter(_quiet_libraries)
  return run(FLAGS.config, FLAGS.workdir, debug=FLAGS.debug,
             coordinator_address=FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
             process_id=FLAGS.process_id)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)

r"""Trains a model: `python main.py --config configs/quickstart.py --workdir runs/quickstart`.

Without `--workdir` the run goes to `runs/<config name>[_<variants>]` (`runs/quickstart`,
`runs/resnet50b_sd_htd_cutmix`), said in the first log line. Any config field can be
overridden (`--config.optim.lr=0.2 --config.num_epochs=10`); a recipe file takes
comma-separated variants after a colon (`--config configs/resnet50b.py:sd,htd,cutmix`).
Running the same command again resumes from the newest checkpoint in `--workdir`; SIGTERM or
Ctrl-C saves a checkpoint at the current step and exits 0 (a second one aborts at once).

Several processes (hosts) run one job with the same command plus `--coordinator_address`,
`--num_processes` and `--process_id`, or under `srun` / `mpirun` with no extra flags; see
docs/SCALING.md.

The full config is written to `workdir/config.json`; `--print_config` also logs it.

Exit status: 0 finished, stopped by a signal with a checkpoint, or `--help`; 2 bad input or a
fault the user must fix (one `error:` line on stderr); 130 interrupted twice.
"""

import importlib.util
import inspect
import logging as std_logging
import os
import re
import sys
from typing import NoReturn, Optional

# TensorFlow (imported only by a TFDS source, and optional) must not flood the console.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Training config file (and variants).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.json '
                    '(default: runs/<config name>[_<variants>]).')
flags.DEFINE_bool('debug', False, 'Show the full traceback of input errors.')
flags.DEFINE_bool('print_config', False, 'Log every config field at the start (it is always '
                  'written to workdir/config.json).')
flags.DEFINE_string('coordinator_address', None,
                    'host:port of process 0, for a run over several processes (hosts).')
flags.DEFINE_integer('num_processes', None, 'Number of processes of a multi-process run.')
flags.DEFINE_integer('process_id', None, 'This process: 0 .. num_processes - 1.')
flags.mark_flags_as_required(['config'])

_HELP_FLAGS = ('--help', '-help', '-h', '-?', '--helpshort', '--helpfull', '--helpxml')


def default_workdir(config_spec: str) -> str:
  """`configs/resnet50b.py:sd,htd` -> `runs/resnet50b_sd_htd`: one directory per recipe and
  variants, so that another recipe never resumes this one's checkpoints."""
  path, _, variants = config_spec.partition(':')
  parts = [os.path.splitext(os.path.basename(path))[0]]
  parts += [v.strip() for v in variants.split(',') if v.strip()]
  return os.path.join('runs', re.sub(r'[^\w.+-]+', '_', '_'.join(parts)))


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


def _flag_value(argv: list[str], name: str) -> Optional[str]:
  """The value of `--name=V` or `--name V` in `argv` (the last one), else None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      value = arg.split('=', 1)[1]
    elif arg == f'--{name}' and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def _config_file_problem(spec: Optional[str]) -> Optional[str]:
  """What is wrong with config file `path[:variants]` that ml_collections reports as a chained
  traceback: no `get_config`, or variants given to a `get_config()` that takes none."""
  if not spec:
    return None
  path, colon, variants = spec.partition(':')
  if not os.path.isfile(path):
    return None
  try:
    module_spec = importlib.util.spec_from_file_location('jaxcls_config_check', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
  except Exception:  # pylint: disable=broad-except  # _one_line reports it
    return None
  get_config = getattr(module, 'get_config', None)
  if not callable(get_config):
    return (f'--config: {path} defines no get_config(); a config file defines get_config() '
            '(or get_config(variants)) returning a ConfigDict, as configs/default.py does')
  if colon and not inspect.signature(get_config).parameters:
    return (f'--config {spec}: {path} takes no variants; drop ":{variants}" and change fields '
            'with --config.FIELD=VALUE (recipe files such as configs/resnet50b.py take variants)')
  return None


def _fail(message: str) -> NoReturn:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but every bad flag, config file or override is one line and exit 2, and
  `--help` exits 0."""
  # The shell expands `--config ~/c.py` but not `--config=~/c.py`.
  argv = [re.sub(r'^(--config=)(~[^:]*)', lambda m: m[1] + os.path.expanduser(m[2]), a)
          for a in argv]
  if any(a.split('=', 1)[0] in _HELP_FLAGS for a in argv[1:]):
    try:  # absl knows --help but not -h or -?
      FLAGS([argv[0], '--help'])  # prints the usage, then absl exits 1
    except SystemExit:
      sys.exit(0)
  if not any(a == '--config' or a.startswith('--config=') for a in argv[1:]):
    _fail('--config: required; give a recipe file, e.g. python main.py --config '
          'configs/quickstart.py (configs/ holds them; --help lists every flag)')
  try:
    rest = FLAGS(argv)
    FLAGS.config.keys()  # the config file is loaded lazily: fail here, not mid-run
  except Exception as e:  # pylint: disable=broad-except
    if '--debug' in argv:
      raise
    _fail(_config_file_problem(_flag_value(argv, 'config')) or _one_line(e))
  if len(rest) > 1:
    _fail(f'unexpected argument {rest[1]!r}; every option is a flag: --config=FILE[:variants], '
          '--workdir=DIR, --config.FIELD=VALUE (python main.py --help lists them)')
  if FLAGS.workdir is not None and not FLAGS.workdir.strip():
    _fail(f'--workdir: empty ({FLAGS.workdir!r}); give a directory, or leave the flag out for '
          f"the default {default_workdir(FLAGS['config'].config_filename)}")
  return rest


def _quiet_libraries(record) -> bool:
  """INFO lines from jaxcls and clu (metrics, progress) only; every library's warnings."""
  return (record.levelno >= std_logging.WARNING or '/jaxcls/' in record.pathname
          or '/clu/' in record.pathname or record.pathname == __file__)


def _describe(config_spec: Optional[str], overrides: dict) -> str:
  """`configs/x.py:sd with --config.optim.lr=0.2`: the config as the command gave it."""
  given = ' '.join(f'--config.{k}={v}' for k, v in overrides.items())
  return ' with '.join(p for p in (config_spec or 'the config', given) if p)


def run(config, workdir: Optional[str], *, debug: bool = False,
        coordinator_address: str | None = None, num_processes: int | None = None,
        process_id: int | None = None, print_config: bool = False,
        config_spec: Optional[str] = None, overrides: Optional[dict] = None,
        default_workdir_used: bool = False) -> int:
  """Joins the processes of a multi-process run, trains; returns the exit status.

  Logs the workdir first (`~` expanded, as in every path field of `config`), then the config in
  one line (every field with `print_config`). Input errors (`UserError`) are printed as one
  `error:` line unless `debug`.
  """
  from jaxcls import config_checks, parallel, train  # pylint: disable=g-import-not-at-top
  from jaxcls.errors import UserError  # pylint: disable=g-import-not-at-top

  if not debug:
    from jaxcls import checkpoint  # pylint: disable=g-import-not-at-top
    checkpoint.quiet_orbax()
  try:
    workdir = config_checks.check_workdir(workdir)
    config_checks.expand_user_paths(config)
    parallel.initialize_distributed(coordinator_address, num_processes, process_id)
    parallel.check_devices()
    config_checks.check_config(config)  # a bad field is the only line printed
    logging.info('Workdir: %s%s', workdir,
                 ' (the default for this config; --workdir=DIR chooses another)'
                 if default_workdir_used else '')
    if print_config:
      logging.info('Config %s:\n%s', _describe(config_spec, overrides or {}), config)
    else:
      logging.info('Config: %s; every field goes to %s as the run starts (--print_config '
                   'logs them).',
                   _describe(config_spec, overrides or {}), os.path.join(workdir, 'config.json'))
    train.train_and_evaluate(config, workdir, second_signal_kills=True)
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
  del argv  # parse_flags refused any argument that is not a flag
  logging.get_absl_handler().python_handler.addFilter(_quiet_libraries)
  config_spec = FLAGS['config'].config_filename
  status = run(FLAGS.config, FLAGS.workdir or default_workdir(config_spec), debug=FLAGS.debug,
               coordinator_address=FLAGS.coordinator_address,
               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
               print_config=FLAGS.print_config, config_spec=config_spec,
               overrides=config_flags.get_override_values(FLAGS['config']),
               default_workdir_used=FLAGS.workdir is None)
  if status:
    # A failed checkpoint write can leave Orbax's signalling threads (not daemons) waiting for
    # a step that will never come, and a normal exit waits for them forever. Everything worth
    # keeping is on disk by now: the checkpoints written before the error are complete.
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # pylint: disable=protected-access
  return status


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)

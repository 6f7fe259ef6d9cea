"""`python -m jaxcls.report`: the command line."""

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Optional

from jaxcls import report
from jaxcls.errors import UserError
from jaxcls.report.curves import plot_runs
from jaxcls.report.records import RESULTS_DOC, RUNS_DIR, record_run
from jaxcls.report.results_doc import write_results_doc
from jaxcls.report.runs import row_from_target, scan_workdirs
from jaxcls.report.tables import TOTAL_COLUMN, rows_csv, rows_markdown

# --- Command line.

def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m jaxcls.report', description=report.__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('targets', nargs='*', help='config files (with :variants) or workdirs')
  parser.add_argument('--csv', action='store_true', help='CSV with plain numbers')
  parser.add_argument('--out', help='write the table (or the doc) to this file')
  parser.add_argument('--total', action='store_true',
                      help=f'add the "{TOTAL_COLUMN}" column (Keras/seed-A style count)')
  parser.add_argument('--runs', help='look for runs of config targets in workdirs under this '
                      'directory (their config.json must match the recipe)')
  parser.add_argument('--plot', metavar='FILE.png',
                      help='plot eval accuracy of the workdir targets by epoch and by time')
  parser.add_argument('--results-doc', action='store_true',
                      help=f'rebuild {RESULTS_DOC} from {RUNS_DIR}/*.json and configs/')
  parser.add_argument('--record-run', metavar='WORKDIR',
                      help=f'store a finished run as {RUNS_DIR}/NAME.json')
  parser.add_argument('--name', help='record name for --record-run (default: the workdir name)')
  parser.add_argument('--command', help='the command that produced the run (--record-run)')
  parser.add_argument('--notes', default='', help='free-text notes for --record-run')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.record_run:
    if not args.command:
      raise UserError('--record-run: also give --command "the command that trained it"')
    name = args.name or os.path.basename(os.path.normpath(args.record_run))
    print(record_run(args.record_run, name, args.command, args.notes))
    return 0
  if args.results_doc:
    print(write_results_doc(args.out or RESULTS_DOC))
    return 0
  if not args.targets:
    raise UserError('give at least one target: a config file (configs/x.py[:variants]) or a '
                    'workdir')
  if args.plot:
    plot_runs(args.targets, args.plot)
    print(args.plot)
    return 0
  runs = scan_workdirs(args.runs) if args.runs else []
  rows = [row_from_target(t, runs) for t in args.targets]
  text = rows_csv(rows, args.total) if args.csv else rows_markdown(rows, args.total)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)
  else:
    sys.stdout.write(text)
  return 0


def cli() -> None:
  try:
    sys.exit(main())
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)

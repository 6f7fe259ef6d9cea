"""Learning curves from the TensorBoard event files that clu writes, and their plot."""

import glob
import math
import os
from collections.abc import Sequence

from jaxcls.errors import UserError
from jaxcls.report.labels import workdir_label
from jaxcls.report.runs import read_workdir

# --- Learning curves from the TensorBoard logs that clu writes.

def read_scalars(workdir: str, tags: Sequence[str]) -> dict[str, list[tuple[int, float, float]]]:
  """{tag: [(step, seconds into the run, value), ...]} from the workdir's event files.

  Seconds count time inside training sessions: a resumed run continues its clock where the last
  session's events stopped, so the time it was not running is left out.
  """
  # Imported here: TensorBoard loads TensorFlow, seconds that a table does not need.
  from tensorboard.backend.event_processing import event_file_loader
  from tensorboard.util import tensor_util

  # One event file per session. The file name and its first event carry whole seconds only,
  # so order the sessions by their last event.
  sessions = [list(event_file_loader.EventFileLoader(path).Load())
              for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))]
  sessions = sorted((s for s in sessions if s), key=lambda events: events[-1].wall_time)
  scalars: dict[str, list[tuple[int, float, float]]] = {tag: [] for tag in tags}
  offset = 0.0
  for events in sessions:
    start = events[0].wall_time
    for event in events:
      for value in event.summary.value:
        if value.tag in scalars:
          number = (float(tensor_util.make_ndarray(value.tensor)) if value.HasField('tensor')
                    else float(value.simple_value))
          scalars[value.tag].append((event.step, offset + event.wall_time - start, number))
    offset += events[-1].wall_time - start
  for series in scalars.values():
    series.sort()
  return scalars


def plot_runs(workdirs: Sequence[str], path: str) -> list[str]:
  """Eval accuracy against epoch (left) and against wall-clock minutes (right), one labelled
  line per run, saved as an image at `path`; returns the line labels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  runs = []
  for workdir in workdirs:
    scalars = read_scalars(workdir, ('eval_accuracy', 'epoch'))
    if not scalars['eval_accuracy']:
      raise UserError(f'--plot: {workdir!r} has no eval_accuracy in its TensorBoard logs; give '
                      'workdirs of runs that evaluated at least once')
    config, _ = read_workdir(workdir)
    runs.append((workdir_label(workdir, config), scalars))
  longest = max(scalars['eval_accuracy'][-1][1] for _, scalars in runs)
  unit, seconds_per_unit = next((u, s) for u, s, limit in (
      ('seconds', 1, 120), ('minutes', 60, 120 * 60), ('hours', 3600, math.inf))
                                if longest < limit)

  fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
  for label, scalars in runs:
    accuracy = scalars['eval_accuracy']
    epochs = {step: value for step, _, value in scalars['epoch']}
    percent = [100 * value for _, _, value in accuracy]
    by_epoch.plot([epochs.get(step, math.nan) for step, _, _ in accuracy], percent,
                  marker='.', label=label)
    by_time.plot([seconds / seconds_per_unit for _, seconds, _ in accuracy], percent,
                 marker='.', label=label)
  for axes, xlabel in ((by_epoch, 'epoch'), (by_time, f'wall-clock time ({unit})')):
    axes.set_xlabel(xlabel)
    axes.set_ylabel('eval accuracy (%)')
    axes.grid(alpha=0.3)
    axes.legend(fontsize='small')
  by_epoch.set_title('Eval accuracy by epoch')
  by_time.set_title('Eval accuracy by training time')
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return [label for label, _ in runs]

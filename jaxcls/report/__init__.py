r"""Results tables in the seeds' formats, learning curves, and `docs/RESULTS.md`.

    python -m jaxcls.report configs/resnet50b.py runs/r18_c10    # a Markdown table
    python -m jaxcls.report --csv --out table.csv configs/resnet50b.py:sd,htd runs/r18_c10
    python -m jaxcls.report --plot curves.png runs/a runs/b        # eval accuracy curves
    python -m jaxcls.report --record-run runs/r18_c10 --command 'python main.py ...'
    python -m jaxcls.report --results-doc                           # rebuilds docs/RESULTS.md

A target is a config file with optional variants (`configs/resnet50b.py:sd,htd`) or a workdir
(holding `config.json` and, once finished, `results.json`). Params and FLOPs/2 always come from
the config; Top-1 and train images/s from a run ("–" where there is none).

Easy to get wrong (SPEC section 0):
- "Params" is the Flax `params` (trainable) count for every row. That is seed A's ResNet50b figure
  (1,309,210) and every seed-B figure, but seed A's OTHER rows are Keras totals, which include the
  BatchNorm moving mean and variance: `--total` adds that column.
- "FLOPs/2" is the multiply-accumulates of the conv and Dense layers only, at batch 1 on the
  dataset's input shape (`models.count_macs`), not XLA's cost analysis.

Runs are labelled by their model, and by the model fields their config changed from the
registered preset (`labels.run_label`: `shake_shake26_2x96d (modified: base_width=16)`).

Modules: `facts` (configs -> params, BN statistics, MACs), `labels` (run labels), `tables`
(formats, Markdown/CSV), `runs` (workdirs, matching a run to its recipe), `curves` (TensorBoard
logs -> plots), `records` (docs/runs/*.json), `results_doc` (docs/RESULTS.md), `cli` (the
command line).
"""

# The public names, importable as `jaxcls.report.X`.
from jaxcls.report.cli import cli, main, parse_args
from jaxcls.report.curves import plot_runs, read_scalars
from jaxcls.report.facts import (KNOWN_DATASETS, REPO, ModelFacts, _ensure_repo_on_path,
                                 apply_overrides, config_facts, input_spec, load_config,
                                 model_facts, model_overrides)
from jaxcls.report.labels import model_label, run_label, workdir_label
from jaxcls.report.records import (RESULTS_DOC, RUNS_DIR, busy_cores, hardware_description,
                                   load_note, load_records, record_fields, record_run,
                                   write_record)
from jaxcls.report.results_doc import (REGENERATE, SEED_A_ROWS, SEED_B_DATASET, SEED_B_ROWS,
                                       results_doc, write_results_doc)
from jaxcls.report.runs import (find_run, read_workdir, row_from_target, row_from_workdir,
                                same_experiment, scan_workdirs)
from jaxcls.report.tables import (COLUMNS, DASH, TOTAL_COLUMN, Row, config_label,
                                  format_count, format_macs, format_percent, format_rate,
                                  markdown_table, rows_csv, rows_markdown)

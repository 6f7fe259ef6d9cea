"""Seed A's table formats (`1,309,210`, `74.11M`, `95.56%`) and the Markdown and CSV tables."""

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from typing import Any, Optional

from jaxcls.report.facts import ModelFacts

DASH = '–'
COLUMNS = ('Model', 'Top-1', 'Error', 'Params', 'FLOPs/2', 'Train img/s')
TOTAL_COLUMN = 'Params + BN stats'


# --- Formats (seed A's README): 1,309,210 / 74.11M / 95.56%.

def format_count(n: Optional[int]) -> str:
  """`1309210` -> `'1,309,210'`."""
  return DASH if n is None else f'{int(n):,}'


def format_macs(n: Optional[int]) -> str:
  """Multiply-accumulates in millions with two decimals: `74110042` -> `'74.11M'`."""
  return DASH if n is None else f'{n / 1e6:,.2f}M'


def format_percent(fraction: Optional[float]) -> str:
  """`0.95564` -> `'95.56%'`."""
  return DASH if fraction is None else f'{100 * fraction:.2f}%'


def format_rate(per_sec: Optional[float]) -> str:
  """Images per second, rounded: `2171.4` -> `'2,171'`."""
  return DASH if per_sec is None else f'{per_sec:,.0f}'


# --- Rows.

@dataclasses.dataclass
class Row:
  label: str
  facts: Optional[ModelFacts]
  top1: Optional[float] = None  # fraction
  images_per_sec: Optional[float] = None

  def take_results(self, results: Optional[dict]) -> 'Row':
    """Top-1 and train images/s from a run's `results.json` (None: no run, dashes)."""
    if results is not None:
      self.top1 = results.get('test_accuracy')
      self.images_per_sec = results.get('train_images_per_sec')
    return self

  def cells(self, total: bool = False) -> list[str]:
    facts = self.facts
    cells = [self.label, format_percent(self.top1),
             format_percent(None if self.top1 is None else 1 - self.top1),
             format_count(facts and facts.params), format_macs(facts and facts.macs),
             format_rate(self.images_per_sec)]
    if total:
      cells.append(format_count(facts and facts.params + facts.batch_stats))
    return cells

  def values(self, total: bool = False) -> dict[str, Any]:
    """Plain numbers for CSV: percents as numbers, MACs as an integer, '' when missing."""
    facts = self.facts
    values = {
        'model': self.label,
        'top1_percent': '' if self.top1 is None else round(100 * self.top1, 4),
        'error_percent': '' if self.top1 is None else round(100 * (1 - self.top1), 4),
        'params': '' if facts is None else facts.params,
        'macs': '' if facts is None else facts.macs,
        'train_images_per_sec': '' if self.images_per_sec is None else
                                round(self.images_per_sec, 1),
    }
    if total:
      values['params_with_bn_stats'] = '' if facts is None else facts.params + facts.batch_stats
    return values



def config_label(target: str) -> str:
  """`configs/resnet50b.py:sd,htd` -> `resnet50b +sd +htd`."""
  path, _, variants = target.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  return ' '.join([name] + [f'+{v.strip()}' for v in variants.split(',') if v.strip()])




# --- Tables.

def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in body]
  return '\n'.join(lines) + '\n'


def rows_markdown(rows: Sequence[Row], total: bool = False) -> str:
  header = list(COLUMNS) + ([TOTAL_COLUMN] if total else [])
  return markdown_table(header, [row.cells(total) for row in rows])


def rows_csv(rows: Sequence[Row], total: bool = False) -> str:
  out = io.StringIO()
  values = [row.values(total) for row in rows]
  fields = list(values[0]) if values else list(Row('', None).values(total))
  writer = csv.DictWriter(out, fieldnames=fields, lineterminator='\n')
  writer.writeheader()
  writer.writerows(values)
  return out.getvalue()

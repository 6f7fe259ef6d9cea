r"""`python -m jaxcls.models`: the registered models, with params, BN statistics and MACs.

    python -m jaxcls.models                       # every model, counted at 32x32x3, 10 classes
    python -m jaxcls.models resnet shake          # models whose name contains a word
    python -m jaxcls.models --input 28x28x1 wrn   # counted on Fashion-MNIST's input
    python -m jaxcls.models --no-counts           # names and families only, at once
    python -m jaxcls.models efficientnet_b0 --stem imagenet --classes 1000 --input 224x224x3
                                                  # the paper's ImageNet form, as published

Counting traces each model once, abstractly (no compile, no compute): about a second for the
deepest DenseNets, about 20 s for the whole registry on 2 CPU cores. Params and MACs come from
the same trace, so only `--no-counts` is faster. A name is what `--config.model.name` takes;
docs/ZOO.md compares the counts with the papers' and the seeds'.
"""

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Optional

from jaxcls.errors import UserError
from jaxcls.models import list_models, zoo


def _input_shape(text: str) -> tuple[int, int, int, int]:
  try:
    height, width, channels = (int(n) for n in text.lower().split('x'))
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r}: expected HxWxC, e.g. 32x32x3') from None
  return (1, height, width, channels)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m jaxcls.models',
                                   description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('words', nargs='*', help='list only models whose name contains a word')
  parser.add_argument('--input', type=_input_shape, default=zoo.CIFAR,
                      help='input HxWxC for the counts (default 32x32x3)')
  parser.add_argument('--classes', type=int, default=10, help='outputs of the head (default 10)')
  parser.add_argument('--stem', choices=('cifar', 'imagenet'),
                      help="the form of the families that have two (model field 'stem'); "
                      'default: each model\'s own')
  parser.add_argument('--no-counts', action='store_true',
                      help='names and families only, without tracing any model')
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  names = [n for n in list_models() if not args.words or any(w in n for w in args.words)]
  if not names:
    raise UserError(f'no registered model contains {" or ".join(map(repr, args.words))}; the '
                    f'models are: {", ".join(list_models())}')
  fields = {'stem': args.stem} if args.stem else {}
  print(zoo.registry_table(names, args.input, args.classes, counts=not args.no_counts, **fields))
  return 0


if __name__ == '__main__':
  # Piped into `head`, the table stops quietly where the reader stopped, as `ls | head` does.
  signal.signal(signal.SIGPIPE, signal.SIG_DFL)
  try:
    sys.exit(main())
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)

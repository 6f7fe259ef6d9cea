"""The one exception type that reaches the user as a single line.

Anything that is the user's to fix (a config field, an override, a data path, a checkpoint that
belongs to another model) raises `UserError` with a message that names the field and what to do.
`main.py` prints it as one line and exits non-zero; everything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
  """Bad input: the message names what to fix."""

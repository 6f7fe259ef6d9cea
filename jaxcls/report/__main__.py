"""`python -m jaxcls.report`: see `jaxcls.report`."""

from jaxcls.report.cli import cli

cli()

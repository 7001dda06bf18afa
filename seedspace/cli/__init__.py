"""The ``seedspace`` command line (``seedspace <command> --help``); see :mod:`seedspace.cli.main`."""

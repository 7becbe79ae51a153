"""The command line: one module per noun, one command table (:mod:`pbxctl.cli.app`)."""

from pbxctl.cli.app import main

__all__ = ["main"]

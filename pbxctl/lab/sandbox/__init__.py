"""Real telephony parts started privately on this machine: Asterisk, PostgreSQL, SIPp.

Every part keeps all its files under one folder, listens on loopback only, is started with a
bounded wait and stopped by PID. Nothing here is a mock.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbxctl.lab.sandbox.asterisk import AsteriskInstance
    from pbxctl.lab.sandbox.postgres import PostgresCluster
    from pbxctl.lab.sandbox.sipp import SippProcess, SippResult
    from pbxctl.pbx.ami import AmiEndpoint

__all__ = ["AmiEndpoint", "AsteriskInstance", "PostgresCluster", "SippProcess", "SippResult"]

# Loaded on first use (PEP 562): a phone keeper needs SIPp only, not Asterisk's sandbox,
# PostgreSQL's and the AMI client (a few MB in each of a lab's twelve keepers).
_WHERE = {"AsteriskInstance": "pbxctl.lab.sandbox.asterisk",
          "PostgresCluster": "pbxctl.lab.sandbox.postgres",
          "SippProcess": "pbxctl.lab.sandbox.sipp", "SippResult": "pbxctl.lab.sandbox.sipp",
          "AmiEndpoint": "pbxctl.pbx.ami"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Real telephony parts started privately on this machine: Asterisk, PostgreSQL, SIPp.

Every part keeps all its files under one folder, listens on loopback only, is started with a
bounded wait and stopped by PID. Nothing here is a mock.
"""

from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.lab.sandbox.sipp import SippProcess, SippResult
from pbxctl.pbx.ami import AmiEndpoint

__all__ = ["AmiEndpoint", "AsteriskInstance", "PostgresCluster", "SippProcess", "SippResult"]

"""Real telephony parts started privately on this machine: Asterisk, PostgreSQL, SIPp.

Every part keeps all its files under one folder, listens on loopback only, is started with a
bounded wait and stopped by PID. Nothing here is a mock.
"""

from .asterisk import AmiEndpoint, AsteriskInstance
from .postgres import PostgresCluster
from .sipp import SippProcess, SippResult

__all__ = ["AmiEndpoint", "AsteriskInstance", "PostgresCluster", "SippProcess", "SippResult"]

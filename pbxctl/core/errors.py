"""Typed errors, each with the one-line fix a person can act on; the CLI maps them to exit codes."""

from __future__ import annotations


class PbxctlError(Exception):
    """Base of every error pbxctl reports to a person.

    ``hint`` says what to do about it; ``exit_code`` is what the CLI exits with.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail  # e.g. a log tail: shown below the one-line error, indented

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(PbxctlError):
    """Bad command-line use."""

    exit_code = 2


class InputError(PbxctlError):
    """Bad input data (an inventory, a config value); names the file, line or field."""

    exit_code = 3


class MissingDependencyError(PbxctlError):
    """A binary or package pbxctl needs is not installed."""

    exit_code = 4


class PortInUseError(PbxctlError):
    """A port we were asked to bind is taken."""

    exit_code = 5


class ServiceStartError(PbxctlError):
    """A process we started (Asterisk, PostgreSQL, SIPp, an AGI server) failed to come up."""

    exit_code = 6


class WaitTimeout(PbxctlError):
    """A bounded wait on a process, socket or event ran out."""

    exit_code = 7


class CommandFailed(PbxctlError):
    """A command we ran on a service (CLI, AMI action, SQL) reported failure."""

    exit_code = 8


class StoreUnavailable(PbxctlError):
    """The PostgreSQL store cannot be reached or did not answer in time."""

    exit_code = 9


class LabStateError(PbxctlError):
    """The lab is not in the state the command needs (already up, not up, stale)."""

    exit_code = 10


class StoreRefused(PbxctlError):
    """The database refused a record for what it holds (not for being down): the caller
    quarantines that record and goes on; retrying it would fail forever."""

    exit_code = 12

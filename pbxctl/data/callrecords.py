"""Call records as the PBX writes them: one URI-encoded line per call in a local call log.

The dialplan's hangup handler appends ``v=1&site=..&uniqueid=..&...&end=..&eor=1`` to
``${ASTLOGDIR}/pbxctl-calls.log`` (FILE() in append+line mode). A local file is the spool:
a database outage loses nothing, and the collector (pbxctl.services.collector) moves the lines to
PostgreSQL when it can. ``eor=1`` closes every record, so a torn line is recognised.

FreeSWITCH sites write the same line through mod_cdr_csv (a template rendered from
``FREESWITCH_RECORD_FIELDS``) into ``${log_dir}/cdr-csv/Master.csv``. mod_cdr_csv writes
a line for every A-leg of the switch, including the agent legs mod_callcenter originates that
never bridged; the dialplan marks the calls that are pbxctl's records (``cdr=1``, as an
Asterisk dialplan pushes its hangup handler only on them), and a line without the mark is a
leg to skip, not a record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

from pbxctl.core import chanvars as V
from pbxctl.core.errors import InputError

CALL_LOG_NAME = "pbxctl-calls.log"
# mod_cdr_csv names its file itself: <log-base>/cdr-csv/Master.csv (log-base = log_dir).
FREESWITCH_CALL_LOG = "cdr-csv/Master.csv"
FORMAT_VERSION = "1"
# The channel variable a FreeSWITCH dialplan sets to 1 on the calls that get a record.
FREESWITCH_MARK = "pbxctl_cdr"

# Record field -> the dialplan expression whose value it carries (shared with the template).
RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("uniqueid", "UNIQUEID"),
    ("linkedid", "CHANNEL(linkedid)"),
    ("origin", V.CALL_ORIGIN),
    ("caller", V.CALLER),
    ("did", V.DID),
    ("prefecture", V.PREFECTURE),
    ("mode", V.MODE),
    ("queue", V.QUEUE),
    ("agent", V.AGENT),
    ("overflow", V.OVERFLOWED),
    ("service", "PBXCTL_SVC"),
    ("start", V.T_START),
    ("answer", V.T_ANSWER),
    ("recording", V.RECORDING),
    ("queue_status", "QUEUESTATUS"),
    ("dial_status", "DIALSTATUS"),
    ("hangup_cause", "HANGUPCAUSE"),
)


# Record field -> the FreeSWITCH channel variable carrying it on the call's A-leg at hang-up.
# Times are whole seconds there (start_epoch, cc_queue_answered_epoch, end_epoch); the
# hang-up cause is the Q.850 number, as Asterisk's HANGUPCAUSE; DIALSTATUS has Asterisk's
# values (FreeSWITCH sets it for compatibility).
FREESWITCH_RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("uniqueid", "uuid"),
    ("linkedid", "uuid"),  # one A-leg per record: the call's own id, as Asterisk's linkedid
    ("origin", "pbxctl_origin"),
    ("caller", "caller_id_number"),
    ("did", "pbxctl_did"),
    ("prefecture", "pbxctl_prefecture"),
    ("mode", "pbxctl_mode"),
    ("queue", "cc_queue"),
    ("agent", "cc_agent"),
    ("overflow", "pbxctl_overflow"),
    ("service", "pbxctl_svc"),
    ("start", "start_epoch"),
    ("answer", "cc_queue_answered_epoch"),
    ("recording", "pbxctl_recording"),
    ("queue_status", "cc_cause"),
    ("dial_status", "DIALSTATUS"),
    ("hangup_cause", "hangup_cause_q850"),
)


@dataclass(frozen=True)
class CallRecord:
    site: str
    uniqueid: str
    linkedid: str
    origin: str
    caller: str
    did: str
    prefecture: str
    mode: str
    queue: str
    agent: str
    overflow: str
    service: str
    start: float
    answer: float | None
    end: float
    recording: str
    queue_status: str
    dial_status: str
    hangup_cause: str

    @property
    def talk_s(self) -> float:
        """Seconds a person was on the call (answer to hang-up); 0 if nobody answered."""
        return max(0.0, self.end - self.answer) if self.answer is not None else 0.0

    @staticmethod
    def ts(value: float | None) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _seconds(fields: dict[str, str], key: str, where: str, *, required: bool) -> float | None:
    raw = fields.get(key, "")
    if raw == "":
        if required:
            raise InputError(f"{where}: call record without {key!r}")
        return None
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{where}: {key}={raw!r} is not a time in seconds") from None


def parse_record(line: str, *, where: str) -> CallRecord | None:
    """One call-log line; ``where`` (file:offset) names it in errors. None: a leg FreeSWITCH
    reported that its dialplan did not mark for a record (``cdr=`` not 1)."""
    pairs = parse_qsl(line.rstrip("\n"), keep_blank_values=True, strict_parsing=False)
    fields = dict(pairs)
    if fields.get("eor") != "1" or not pairs or pairs[-1][0] != "eor":
        raise InputError(f"{where}: torn call record (no end-of-record marker)")
    if pairs[0][0] != "v" or len(fields) != len(pairs):
        # A write torn before its end, then the next record appended to the same line: both
        # halves are in here, and the later values would silently win.
        raise InputError(f"{where}: torn call record (two records merged on one line)")
    # PostgreSQL text cannot hold NUL: a caller id carrying one (PSTN peers send anything)
    # keeps its record, with U+FFFD in its place. Other characters are data, bound as SQL
    # parameters and escaped by every output.
    fields = {k: v.replace("\x00", "\ufffd") for k, v in fields.items()}
    if fields.get("v") != FORMAT_VERSION:
        raise InputError(f"{where}: unknown call record version {fields.get('v')!r}")
    if "cdr" in fields and fields["cdr"] != "1":
        return None
    for key in ("site", "uniqueid"):
        if not fields.get(key):
            raise InputError(f"{where}: call record without {key!r}")
    start = _seconds(fields, "start", where, required=False)
    end = _seconds(fields, "end", where, required=True)
    assert end is not None
    text = {name: fields.get(name, "") for name, _ in RECORD_FIELDS}
    return CallRecord(
        site=fields["site"], uniqueid=text["uniqueid"], linkedid=text["linkedid"],
        origin=text["origin"], caller=text["caller"], did=text["did"],
        prefecture=text["prefecture"], mode=text["mode"], queue=text["queue"],
        agent=text["agent"], overflow=text["overflow"], service=text["service"],
        start=start if start is not None else end,
        answer=_seconds(fields, "answer", where, required=False), end=end,
        recording=text["recording"], queue_status=text["queue_status"],
        dial_status=text["dial_status"], hangup_cause=text["hangup_cause"])


@dataclass(frozen=True)
class Position:
    """Where the collector got to: a byte offset in the file with this inode."""

    inode: int
    offset: int


@dataclass(frozen=True)
class Chunk:
    path: Path
    inode: int
    start: int
    end: int  # offset just past the last complete line read
    lines: tuple[tuple[int, str], ...]  # (offset, line)


def read_complete_lines(path: Path, position: Position | None, *,
                        max_bytes: int = 4 * 1024 * 1024) -> Chunk | None:
    """Complete lines after ``position`` (a torn last line waits for its newline)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        start = position.offset if position and position.inode == st.st_ino else 0
        if start > st.st_size:  # truncated under us: start over rather than skip new lines
            start = 0
        fh.seek(start)
        data = fh.read(max_bytes)
    cut = data.rfind(b"\n") + 1
    lines: list[tuple[int, str]] = []
    offset = start
    for raw in data[:cut].splitlines(keepends=True):
        lines.append((offset, raw.decode("utf-8", errors="replace")))
        offset += len(raw)
    return Chunk(path, st.st_ino, start, start + cut, tuple(lines))

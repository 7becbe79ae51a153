"""pyst2's AGI, wrapped for FastAGI over a socket.

What this fixes in pyst2 (0.5.1):
- ``AGI.__init__`` installs a SIGHUP handler (fails off the main thread) and reads the
  environment from stdin: here the constructor does no I/O; ``read_agi_env`` reads it, bounded.
- ``_quote`` does not escape: an argument holding ``"`` or a newline could inject a second
  AGI command. Here every argument is escaped the way res_agi's parser expects, and
  line breaks are refused.
- A bare ``HANGUP`` line and ``511`` replies make pyst2 raise ``ValueError`` and shift every
  later reply by one. Here they become :class:`AgiHangup`.
- Reads have no timeout in pyst2. Here every read is bounded by the socket timeout and a
  silent peer becomes :class:`AgiTimeout`.
"""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from asterisk.agi import AGI, AGIAppError, AGIError, AGIHangup, AGIInvalidCommand, AGIUsageError

from ivr_scripts.call import CallHangup, CallTimeout, ProtocolError
from pbxctl.core.dtmf import is_digits

MAX_LINE = 8192
MAX_ENV_LINES = 128
_RE_CODE = re.compile(r"^(\d{3})[ -](.*)$")
_RE_KV = re.compile(r"(?P<key>\w+)=(?P<value>[^\s]*)\s*(?:\((?P<data>[^)]*)\))?")
# "200 result=1 (<value>)" with nothing after the data: the data is everything up to the
# last ")" — GET VARIABLE's value may itself hold ")" or " x=y" (res_agi writes it verbatim).
_RE_RESULT_DATA = re.compile(r"^result=(?P<value>-?\d+) \((?P<data>.*)\)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,]*\))?$")


class AgiHangup(AGIHangup, CallHangup):  # type: ignore[misc]
    """The channel hung up or the session closed."""


class AgiTimeout(AGIError, CallTimeout):  # type: ignore[misc]
    """Asterisk sent nothing within the read timeout."""


class AgiProtocolError(AGIError, ProtocolError):  # type: ignore[misc]
    """A line that is not AGI."""


def quote(arg: object) -> str:
    """One AGI argument, double-quoted with ``\\`` and ``"`` escaped (res_agi parse_args)."""
    text = str(arg)
    if any(c in text for c in "\r\n\0"):
        raise ValueError(f"AGI argument must not contain a line break or NUL: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_var_name(name: str) -> str:
    if not _VAR_NAME.match(name):
        raise ValueError(f"not a safe channel variable name: {name!r}")
    return name


class _TextReader:
    """Bounded line reads over a socket file; non-UTF-8 bytes become U+FFFD, not exceptions."""

    def __init__(self, raw: io.BufferedIOBase, *,
                 before_read: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self.before_read = before_read

    def readline(self) -> str:
        if self.before_read is not None:
            self.before_read()
        try:
            data = self._raw.readline(MAX_LINE)
        except TimeoutError as exc:
            raise AgiTimeout("Asterisk sent nothing within the read timeout") from exc
        except OSError as exc:
            raise AgiHangup(f"AGI connection lost: {exc}") from exc
        if not data:
            raise AgiHangup("AGI connection closed by Asterisk")
        if len(data) >= MAX_LINE and not data.endswith(b"\n"):
            # Not AGI: end the session here. Reading on to the line's end would let a peer
            # make us read without bound (an endless line).
            raise AgiProtocolError(f"AGI line longer than {MAX_LINE} bytes")
        # Control characters (a NUL in agi_callerid, say) end here: they would break SQL,
        # logs and every config or command line the value might reach later.
        return _CONTROL.sub("\ufffd", data.decode("utf-8", errors="replace").rstrip("\r\n"))


def read_agi_env(reader: _TextReader) -> dict[str, str]:
    """The ``agi_*`` block that starts every session, ended by a blank line."""
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        line = reader.readline()
        if line == "":
            return env
        key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_"):
            raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
        env[key.strip()] = value.strip()
    raise AgiProtocolError(f"AGI environment longer than {MAX_ENV_LINES} lines")


class _NullWriter:
    def write(self, _s: str) -> int:
        return 0

    def flush(self) -> None:
        pass


class AgiSession(AGI):  # type: ignore[misc]
    """One FastAGI session. Implements :class:`ivr_scripts.call.Call`."""

    def __init__(self, sock: socket.socket, *, env: Mapping[str, str], reader: _TextReader) -> None:
        # Deliberately not calling AGI.__init__: it installs a signal handler and reads stdin.
        self._sock = sock
        self.stdin = reader
        self.stdout = _NullWriter()
        self.stderr = _NullWriter()
        self._got_sighup = False
        self.env = dict(env)
        self.hung_up = False
        self.transcript: list[str] = []

    # -- wire -----------------------------------------------------------------
    @classmethod
    def open(cls, sock: socket.socket, *, env_timeout: float, read_timeout: float) -> AgiSession:
        """Read the environment block within ``env_timeout`` in total (a peer trickling one
        line every few seconds cannot hold the session longer)."""
        deadline = time.monotonic() + env_timeout

        def before_read() -> None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgiTimeout(f"AGI environment not complete within {env_timeout:g}s")
            sock.settimeout(left)

        reader = _TextReader(sock.makefile("rb"), before_read=before_read)
        env = read_agi_env(reader)
        reader.before_read = None
        sock.settimeout(read_timeout)
        return cls(sock, env=env, reader=reader)

    def _quote(self, string: object) -> str:
        return quote(string)

    def send_command(self, command: str, *args: object) -> None:
        line = " ".join([command.strip(), *(str(a) for a in args)]).strip()
        if "\n" in line or "\r" in line:
            raise ValueError(f"AGI command must be one line: {line!r}")
        self.transcript.append(line)
        try:
            self._sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            self.hung_up = True
            raise AgiHangup(f"AGI connection lost while sending: {exc}") from exc

    def execute(self, command: str, *args: object) -> dict[str, Any]:
        self.send_command(command, *args)
        return self.get_result()

    def get_result(self, stdin: object = None) -> dict[str, Any]:
        while True:
            line = self.stdin.readline()
            if line.strip() == "HANGUP":
                # Asterisk's asynchronous notice; the reply to our command still follows.
                self.hung_up = True
                continue
            break
        m = _RE_CODE.match(line)
        if not m:
            raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
        code, rest = int(m.group(1)), m.group(2)
        if code == 200:
            result: dict[str, tuple[str, str]] = {"result": ("", "")}
            whole = _RE_RESULT_DATA.match(rest)
            if whole:
                result["result"] = (whole["value"], whole["data"])
            else:
                for key, value, data in _RE_KV.findall(rest):
                    result[key] = (value, data)
            value, data = result["result"]
            if data == "hangup" or (value == "-1" and self.hung_up):
                raise AgiHangup("channel hung up during the command")
            if value == "-1":
                raise AGIAppError(f"command failed: {self.transcript[-1]!r}")
            return result
        if code == 511:
            self.hung_up = True
            raise AgiHangup("channel is dead (511)")
        if code == 510:
            raise AGIInvalidCommand(rest)
        if code == 520:
            usage = [line]
            while not line.startswith("520 "):
                line = self.stdin.readline()
                usage.append(line)
            raise AGIUsageError("\n".join(usage))
        raise AgiProtocolError(f"unexpected AGI reply code {code}: {line[:80]!r}")

    # -- Call interface -------------------------------------------------------
    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def params(self) -> dict[str, str]:
        query = self.env.get("agi_network_script", "").partition("?")[2]
        return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}

    @property
    def dnid(self) -> str:
        dnid = self.env.get("agi_dnid", "")
        return dnid if dnid not in ("", "unknown") else self.env.get("agi_extension", "")

    @property
    def caller(self) -> str:
        cid = self.env.get("agi_callerid", "")
        return "" if cid == "unknown" else cid

    def get_variable(self, name: str) -> str:
        result = self.execute("GET VARIABLE", quote(check_var_name(name)))
        value, data = result["result"]
        return data if value == "1" else ""

    def set_variable(self, name: str, value: str) -> None:
        self.execute("SET VARIABLE", quote(check_var_name(name)), quote(value))

    def play(self, prompt: str, *, escape_digits: str = "") -> str:
        result = self.execute("STREAM FILE", quote(prompt), quote(escape_digits))
        value = result["result"][0]
        if result.get("endpos") and value == "0":
            # res_agi reports a missing file as result=0 endpos=0 with a WARNING; the dialplan
            # layer checks prompts exist before asking, so treat as played.
            return ""
        return chr(int(value)) if value not in ("", "0") else ""

    def collect_digits(self, prompt: str, *, max_digits: int, timeout_ms: int) -> str:
        result = self.execute("GET DATA", quote(prompt), int(timeout_ms), int(max_digits))
        # "(timeout)" only says the caller stopped typing: the digits so far are the answer.
        return str(result["result"][0])

    def say_digits(self, digits: str) -> None:
        if not is_digits(digits):
            raise ValueError(f"say_digits takes digits only: {digits!r}")
        self.execute("SAY DIGITS", quote(digits), quote(""))

    def verbose(self, message: str, *, level: int = 1) -> None:
        self.execute("VERBOSE", quote(message), int(level))

    def hangup(self) -> None:
        self.execute("HANGUP")

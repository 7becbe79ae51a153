#!/usr/bin/env python3
"""The `welcome` handler as a classic fork-per-call AGI script (stdin/stdout), for comparison
with the FastAGI server in bench.agi_throughput. Same handler code, same Call interface."""

from __future__ import annotations

import sys
from typing import Any

from ivr_scripts.agi import AgiSession
from ivr_scripts.handlers import welcome
from ivr_scripts.registry import HandlerContext
from pbxctl.core import chanvars as V


class _Stdio:
    def settimeout(self, _t: float) -> None:
        pass

    def makefile(self, _mode: str) -> Any:
        return sys.stdin.buffer

    def sendall(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def main() -> None:
    call = AgiSession.open(_Stdio(), env_timeout=5, read_timeout=30)  # type: ignore[arg-type]
    welcome(call, HandlerContext(fixed_welcome={"default": "beep"}))
    call.set_variable(V.STATUS, V.STATUS_OK)


if __name__ == "__main__":
    main()

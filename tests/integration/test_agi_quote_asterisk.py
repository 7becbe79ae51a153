"""AGI quoting through a real Asterisk 22 (not only the Python port of res_agi's parser in
tests/unit/test_agi_quote.py): hostile values are SET VARIABLE'd by a handler, then read
back two ways — by the handler (GET VARIABLE) and independently over AMI (Getvar on the
channel). Both must equal what was set, byte for byte."""

from __future__ import annotations

import queue
import random
import threading
from pathlib import Path

import pytest

from ivr_scripts.call import Call
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.lab.sandbox.asterisk import AsteriskInstance, find_asterisk
from pbxctl.pbx.ami import AmiClient
from tests.conftest import AgiFactory

pytestmark = pytest.mark.asterisk

HAND_PICKED = [
    'x" "EXTRA',            # pyst2's quoting would end the argument here and inject another
    'ends with \\',         # a trailing backslash would escape the closing quote
    'a\\"b',                # escaped quote inside
    '""', '"', "\\\\", "\\n literal", "tab\there", "semi;colon,comma|pipe",
    "${EVIL} $[1+1] ${SHELL(id)}",  # SET VARIABLE stores, never evaluates
    "中文 户号 三百二十九元", "  spaced  ", "", "(paren) )", "= equals = ", "'single'",
]


def generated(n: int, *, seed: int = 95598) -> list[str]:
    """Random strings over the characters that matter to the parser (fixed seed)."""
    rng = random.Random(seed)
    alphabet = ['"', "\\", " ", "\t", "a", "中", "$", "{", "}", "(", ")", ",", ";", "'", "="]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(n)]


VALUES = HAND_PICKED + generated(40)


def test_hostile_values_survive_set_variable_on_a_real_asterisk(
        agi_server_factory: AgiFactory, short_tmp: Path) -> None:
    got: queue.Queue[tuple[str, list[str]]] = queue.Queue()
    checked = threading.Event()

    def echo(call: Call, ctx: HandlerContext) -> None:
        channel = call.get_variable("CHANNEL")
        for i, value in enumerate(VALUES):
            call.set_variable(f"PBXCTL_T{i}", value)
        got.put((channel, [call.get_variable(f"PBXCTL_T{i}") for i in range(len(VALUES))]))
        checked.wait(30)  # keep the channel up while the test reads it over AMI

    server = agi_server_factory(registry=Registry([(echo, 60.0)]))
    host, port = server.address[0], server.address[1]
    ast = AsteriskInstance(
        name="quote", root=short_tmp / "q", binary=find_asterisk(22),
        configs={"extensions.conf": f"[agi-test]\nexten => 100,1,AGI(agi://{host}:{port}/echo)\n"
                                    " same => n,Hangup()\n"})
    ast.start()
    try:
        assert ast.version().startswith("22."), "this test is about Asterisk 22's parser"
        assert ast.ami is not None
        with AmiClient(host=ast.ami.host, port=ast.ami.port, username=ast.ami.username,
                       secret=ast.ami.secret) as ami:
            ami.action("Originate", Channel="Local/100@agi-test", Application="Wait",
                       Data="30", Async="true")
            channel, readback = got.get(timeout=30)
            over_ami = []
            for i in range(len(VALUES)):
                reply = ami.action("Getvar", Channel=channel, Variable=f"PBXCTL_T{i}")
                assert reply.ok, reply.response
                over_ami.append(reply.response.get("Value", ""))
            checked.set()
    finally:
        checked.set()
        ast.stop()
    bad_agi = [(v, r) for v, r in zip(VALUES, readback, strict=True) if v != r]
    assert bad_agi == []
    bad_ami = [(v, a) for v, a in zip(VALUES, over_ami, strict=True) if v != a]
    assert bad_ami == []

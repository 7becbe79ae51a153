"""The pyst2 wrapper over a real socket pair: HANGUP, 511, timeouts, garbage."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ivr_scripts.agi import MAX_LINE, AgiHangup, AgiProtocolError, AgiSession, AgiTimeout

ENV = b"agi_network: yes\nagi_network_script: welcome\nagi_uniqueid: 1700000000.1\n" \
      b"agi_dnid: 95598\nagi_callerid: 057188880000\n\n"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def open_session(pair: tuple[socket.socket, socket.socket], replies: bytes,
                 *, read_timeout: float = 2.0) -> AgiSession:
    ours, pbx = pair
    pbx.sendall(ENV + replies)
    return AgiSession.open(ours, env_timeout=2.0, read_timeout=read_timeout)


def test_env_is_read_and_exposed(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"")
    assert (s.uniqueid, s.dnid, s.caller) == ("1700000000.1", "95598", "057188880000")


def test_set_variable_sends_escaped_command(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"200 result=1\n")
    s.set_variable("PBXCTL_X", 'a "b"')
    assert pair[1].recv(1000) == b'SET VARIABLE "PBXCTL_X" "a \\"b\\""\n'


def test_get_variable_parses_data(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"200 result=1 (hello world)\n200 result=0\n")
    assert s.get_variable("X") == "hello world"
    assert s.get_variable("UNSET") == ""


def test_hangup_line_then_reply_keeps_replies_in_step(
        pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"HANGUP\n200 result=1\n511 Command Not Permitted on a dead channel\n")
    s.set_variable("A", "1")  # the reply after HANGUP belongs to this command
    assert s.hung_up
    with pytest.raises(AgiHangup):
        s.play("hello-world")


def test_result_minus_one_after_hangup_is_a_hangup(
        pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"HANGUP\n200 result=-1 endpos=0\n")
    with pytest.raises(AgiHangup):
        s.play("hello-world")


def test_silent_pbx_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"", read_timeout=0.2)
    with pytest.raises(AgiTimeout):
        s.set_variable("A", "1")


def test_closed_connection_is_a_hangup(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"")
    pair[1].shutdown(socket.SHUT_WR)
    with pytest.raises(AgiHangup):
        s.set_variable("A", "1")


def test_garbage_reply_is_a_protocol_error(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"\xff\xfe not agi\n")
    with pytest.raises(AgiProtocolError):
        s.set_variable("A", "1")


def test_over_long_line_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    s = open_session(pair, b"2" * (MAX_LINE * 2) + b"\n200 result=1\n")
    with pytest.raises(AgiProtocolError, match="longer"):
        s.set_variable("A", "1")


def test_env_without_agi_prefix_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, pbx = pair
    pbx.sendall(b"GET / HTTP/1.0\n\n")
    with pytest.raises(AgiProtocolError):
        AgiSession.open(ours, env_timeout=1.0, read_timeout=1.0)


def test_silent_client_times_out_on_env(pair: tuple[socket.socket, socket.socket]) -> None:
    with pytest.raises(AgiTimeout):
        AgiSession.open(pair[0], env_timeout=0.2, read_timeout=1.0)

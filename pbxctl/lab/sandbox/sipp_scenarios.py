"""SIPp caller scenarios with RFC 2833 DTMF from SIPp's bundled pcaps, generated per test.

A step is (pause in ms, digits): wait, then send each digit's pcap 250 ms apart. The call
then either waits for the PBX to hang up or hangs up itself after a hold time.

SIPp's pcaps are separate captures: a repeated digit replays the same RTP timestamp and
sequence numbers, and sequence numbers jump backwards between digits, so Asterisk discards
them as duplicates. Each digit is therefore sent from a copy of the bundled pcap whose RTP
sequence numbers and timestamps continue one monotonic stream (payloads unchanged).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pbxctl.lab.sandbox.sipp import PCAP_DIR

_SIPP = Path(__file__).parents[1] / "sipp"
# Where the call is set up from (up to its first <nop>): a PSTN caller, a seat's phone
# calling out with digest auth (BYE is then CSeq 3), or a phone answering a call.
_HEADS = {"uac": (_SIPP / "uac_wait_bye.xml", 2), "uac_auth": (_SIPP / "uac_auth_hold.xml", 3),
          "uas": (_SIPP / "uas_agent.xml", 0)}
DIGIT_PCAP = {**{d: f"dtmf_2833_{d}.pcap" for d in "0123456789"},
              "#": "dtmf_2833_pound.pcap", "*": "dtmf_2833_star.pcap"}
DIGIT_GAP_MS = 250


def _setup(kind: str) -> str:
    path = _HEADS[kind][0]
    head, sep, _ = path.read_text(encoding="iso-8859-1").partition("  <nop>")
    assert sep, f"{path.name} changed shape"
    return head


_PCAP_HEADER = 24
_REC_HEADER = 16
_RTP_OFFSET = 14 + 20 + 8  # Ethernet + IPv4 (no options) + UDP, as in SIPp's pcaps


def renumbered_pcap(src: Path, dst: Path, *, seq: int, ts: int) -> tuple[int, int]:
    """Copy ``src`` with RTP sequence numbers from ``seq`` and one event timestamp ``ts``.
    Returns the next (seq, ts) to use."""
    data = bytearray(src.read_bytes())
    off, count, last_ts = _PCAP_HEADER, 0, None
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        rtp = off + _REC_HEADER + _RTP_OFFSET
        old_ts = struct.unpack_from(">I", data, rtp + 4)[0]
        if last_ts is not None and old_ts != last_ts:
            raise ValueError(f"{src}: more than one RTP event timestamp")
        last_ts = old_ts
        struct.pack_into(">HI", data, rtp + 2, (seq + count) & 0xFFFF, ts & 0xFFFFFFFF)
        count += 1
        off += _REC_HEADER + incl
    dst.write_bytes(bytes(data))
    return seq + count, ts + 8000  # the next event starts well after this one


def _play(path: Path) -> str:
    return f"  <nop><action><exec play_pcap_audio={quoteattr(str(path))}/></action></nop>\n"


def dtmf_scenario(steps: list[tuple[int, str]], *, pcap_dir: Path,
                  hold_ms: int | None = None, bye_timeout_ms: int = 60000,
                  speech_after: Path | None = None, head: str = "uac") -> str:
    """Scenario XML; the renumbered digit pcaps it plays are written into ``pcap_dir``.
    ``hold_ms``: hang up that long after the last digit; None: wait for the PBX's BYE (at
    most ``bye_timeout_ms``). ``speech_after``: an audio pcap (e.g. SIPp's g711a.pcap) the
    caller starts speaking after the last digit."""
    if head == "uas" and hold_ms is not None:
        raise ValueError("an answering phone waits for the PBX's BYE (hold_ms=None)")
    out = [re.sub(r'<scenario name="[^"]*">', f'<scenario name="pbxctl {head} dtmf">',
                  _setup(head), count=1)]
    pcap_dir.mkdir(parents=True, exist_ok=True)
    seq, ts, n = 1000, 160000, 0
    for pause, digits in steps:
        if pause:
            out.append(f'  <pause milliseconds="{int(pause)}"/>\n')
        for i, digit in enumerate(digits):
            if digit not in DIGIT_PCAP:
                raise ValueError(f"no DTMF pcap for {digit!r}")
            if i:
                out.append(f'  <pause milliseconds="{DIGIT_GAP_MS}"/>\n')
            dst = pcap_dir / f"dtmf-{n:03d}.pcap"
            seq, ts = renumbered_pcap(PCAP_DIR / DIGIT_PCAP[digit], dst, seq=seq, ts=ts)
            n += 1
            out.append(_play(dst))
    if speech_after is not None:
        # A new play_pcap_audio cuts the one playing: let the last digit's events go first.
        if steps:
            out.append(f'  <pause milliseconds="{DIGIT_GAP_MS * 2}"/>\n')
        out.append(_play(speech_after))
    if hold_ms is None:
        out.append(f'  <recv request="BYE" timeout="{int(bye_timeout_ms)}"/>\n')
        out.append('''  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
''')
    else:
        out.append(f'  <pause milliseconds="{int(hold_ms)}"/>\n')
        out.append(f'''  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {_HEADS[head][1]} BYE
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
''')
    out.append("</scenario>\n")
    return "".join(out)


def write_scenario(folder: Path, name: str, xml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.xml"
    path.write_text(xml, encoding="iso-8859-1")
    return path

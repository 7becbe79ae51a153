"""What a recording file on disk really holds: size, sha256, WAV header, audio seconds, and
whether that matches the call it belongs to."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

# A recording may be this much shorter/longer than the talk time and still be whole: the
# timestamps are taken in the dialplan a few frames away from where MixMonitor starts/stops.
TOLERANCE_S = 1.0


@dataclass(frozen=True)
class WavInfo:
    channels: int
    rate: int
    bits: int
    data_bytes: int  # as the header says
    file_bytes: int

    @property
    def audio_s(self) -> float:
        frame = self.channels * self.bits // 8
        return self.data_bytes / (frame * self.rate) if frame and self.rate else 0.0

    @property
    def finalised(self) -> bool:
        """Asterisk writes the sizes into the header when it closes the file."""
        return self.data_bytes > 0 or self.file_bytes <= 44


def read_wav_header(path: Path) -> WavInfo:
    """Parse RIFF/WAVE chunks; ValueError names what is wrong."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError("not a RIFF/WAVE file")
        fmt: tuple[int, int, int] | None = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                raise ValueError("no data chunk")
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                body = fh.read(clen)
                if len(body) < 16:
                    raise ValueError("short fmt chunk")
                _tag, channels, rate, _brate, _align, bits = struct.unpack("<HHIIHH", body[:16])
                fmt = (channels, rate, bits)
            elif cid == b"data":
                if fmt is None:
                    raise ValueError("data chunk before fmt chunk")
                return WavInfo(fmt[0], fmt[1], fmt[2], clen, size)
            else:
                fh.seek(clen + (clen & 1), 1)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class RecordingCheck:
    path: str
    size_bytes: int
    sha256: str
    audio_s: float
    status: str  # ok | missing | empty | truncated | corrupt
    problem: str


def inspect_recording(path: Path, *, talk_s: float) -> RecordingCheck:
    """Judge a recording against the talk time of its call record."""
    if not path.is_file():
        return RecordingCheck(str(path), 0, "", 0.0, "missing",
                              "no recording file (recording store full or unwritable?)")
    size = path.stat().st_size
    digest = sha256_file(path)
    try:
        info = read_wav_header(path)
    except ValueError as exc:
        status = "empty" if size == 0 else "corrupt"
        return RecordingCheck(str(path), size, digest, 0.0, status, f"bad WAV: {exc}")
    if info.data_bytes + 44 > size + 1:
        return RecordingCheck(str(path), size, digest, info.audio_s, "corrupt",
                              f"header says {info.data_bytes} data bytes, file has {size}")
    if info.data_bytes == 0:
        return RecordingCheck(str(path), size, digest, 0.0, "empty", "no audio in the file")
    if info.audio_s < talk_s - TOLERANCE_S:
        return RecordingCheck(str(path), size, digest, info.audio_s, "truncated",
                              f"{info.audio_s:.2f} s of audio for {talk_s:.2f} s of talk")
    if info.audio_s > talk_s + TOLERANCE_S:
        return RecordingCheck(str(path), size, digest, info.audio_s, "corrupt",
                              f"{info.audio_s:.2f} s of audio for {talk_s:.2f} s of talk")
    return RecordingCheck(str(path), size, digest, info.audio_s, "ok", "")

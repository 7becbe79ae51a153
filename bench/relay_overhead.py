"""What the call-time relay costs a healthy call, and what 5,000 held sessions cost it.

    .venv/bin/python -m bench.relay_overhead [--sessions 2000] [--held 5000]

1. Latency, side by side in one run: a welcome-like AGI session (the CTI sends two SET
   VARIABLEs and ends) against our real FastAGI server, round robin direct, through a relay
   on uvloop (as `pbxctl relay serve` runs) and through one on asyncio's own loop, from a
   client that speaks AGI exactly as Asterisk does (environment block, a "200 result=1" per
   command). Printed: p50/p95/p99 per path and what each relay adds.
2. Held sessions: ``--held`` sessions opened through a relay (running in its own process)
   to a CTI stand-in that sends one command and then keeps the session (a caller inside
   self-service); printed: the relay's RSS before and with them held, per session.
   The stand-in is an asyncio echo of the protocol, not our server, because our threaded
   server caps sessions at 4,000 by design (max_sessions): this measures the relay alone.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

from ivr_scripts.call import Call
from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.services.relay import Deadlines, Relay, RelaySettings, Target, run_loop

ENV = (b"agi_network: yes\nagi_network_script: welcome\nagi_request: agi://x/welcome\n"
       b"agi_channel: PJSIP/pstn-0001\nagi_uniqueid: bench.1\n\n")


def welcome(call: Call, ctx: HandlerContext) -> None:
    call.set_variable(V.WELCOME_PROMPT, "welcome-default/v1")
    call.set_variable(V.STATUS, V.STATUS_OK)


async def one_session(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV)
    await writer.drain()
    while line := await reader.readline():
        if line.startswith(b"SET VARIABLE") or line[:1].isalpha():
            writer.write(b"200 result=1\n")
            await writer.drain()
    writer.close()
    return (time.perf_counter() - started) * 1000


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


async def latency(ports: dict[str, int], n: int) -> None:
    times: dict[str, list[float]] = {name: [] for name in ports}
    for _ in range(20):  # warm every path
        for port in ports.values():
            await one_session(port)
    names = list(ports)
    for i in range(n):  # round robin, rotated, so every path sees the same machine state
        for name in names[i % len(names):] + names[:i % len(names)]:
            times[name].append(await one_session(ports[name]))
    direct = times["direct"]
    print(f"welcome session, {n} each, round robin (ms):")
    print(f"  {'path':<16} {'p50':>7} {'p95':>7} {'p99':>7} {'adds p50':>9} {'adds p95':>9}")
    for name, xs in times.items():
        print(f"  {name:<16} {statistics.median(xs):7.3f} {pct(xs, 0.95):7.3f} "
              f"{pct(xs, 0.99):7.3f} {statistics.median(xs) - statistics.median(direct):+9.3f} "
              f"{pct(xs, 0.95) - pct(direct, 0.95):+9.3f}")


# -- held sessions -------------------------------------------------------------------------
def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def relay_process(port: int, cti_port: int, ready: EventType, held: bool = False,
                  plain: bool = False) -> None:
    raise_nofile()
    # Production deadlines for the latency run; generous ones when sessions are held.
    deadlines = (Deadlines(connect_ms=2000, command_ms=600000, session_s=3600) if held
                 else Deadlines())

    async def run() -> None:
        relay = Relay(RelaySettings(host="127.0.0.1", port=port, max_sessions=100000,
                                    targets=(Target("cti-a", "127.0.0.1", cti_port),),
                                    deadlines=deadlines))
        await relay.start()
        ready.set()
        await asyncio.Event().wait()

    if plain:
        asyncio.run(run())
    else:
        run_loop(run())  # as `pbxctl relay serve` runs it (uvloop when installed)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def held(n: int) -> None:
    raise_nofile()
    release = asyncio.Event()

    async def cti(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(b'GET DATA "enter-account" 8000 10\n')  # the caller is typing
        await writer.drain()
        await reader.readline()
        await release.wait()
        writer.close()

    server = await asyncio.start_server(cti, "127.0.0.1", 0, backlog=8192)
    cti_port = server.sockets[0].getsockname()[1]
    port = free_port()
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=relay_process, args=(port, cti_port, ready, True),
                                   daemon=True)
    proc.start()
    ready.wait(30)
    assert proc.pid is not None
    idle = rss_kib(proc.pid)
    conns = []
    for i in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(ENV)
        await writer.drain()
        conns.append((reader, writer))
        if i % 500 == 499:
            await asyncio.sleep(0)
    for reader, writer in conns:  # every session reached the CTI's command
        line = await asyncio.wait_for(reader.readline(), 60)
        assert line.startswith(b"GET DATA"), line
        writer.write(b"200 result=3301 (timeout)\n")
        await writer.drain()
    await asyncio.sleep(1)
    loaded = rss_kib(proc.pid)
    print(f"{n} sessions held through one relay process: RSS {idle / 1024:.1f} MiB idle, "
          f"{loaded / 1024:.1f} MiB with them ({(loaded - idle) / n:.1f} KiB per session)")
    release.set()
    for _, writer in conns:
        writer.close()
    proc.terminate()
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--held", type=int, default=5000)
    args = ap.parse_args()
    cti = FastAgiServer(registry=Registry([welcome]), context=HandlerContext(),
                        config=AgiServerConfig(host="127.0.0.1", port=free_port()))
    cti.start()
    # The relays in their own processes, as in production (their own interpreter, no GIL
    # shared with this client or the CTI's threads): on uvloop (as `relay serve` runs) and
    # on asyncio's own loop.
    ports = {"direct": cti.address[1]}
    procs = []
    for name, plain in (("relay (uvloop)", False), ("relay (asyncio)", True)):
        port = free_port()
        ready = multiprocessing.Event()
        proc = multiprocessing.Process(target=relay_process,
                                       args=(port, cti.address[1], ready, False, plain),
                                       daemon=True)
        proc.start()
        ready.wait(30)
        ports[name] = port
        procs.append(proc)
    try:
        asyncio.run(latency(ports, args.sessions))
    finally:
        for proc in procs:
            proc.terminate()
        cti.shutdown(grace=2)
    asyncio.run(held(args.held))


if __name__ == "__main__":
    main()

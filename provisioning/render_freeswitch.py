"""FreeSWITCH renderers: pure functions from the same model (plus secrets) to XML texts.

Jinja2 with autoescaping (every value is XML-escaped) and StrictUndefined; a value that
would still break a file (a NUL or other control character XML cannot carry) is refused.
Each file knows how a running FreeSWITCH picks it up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address
from typing import Any

import jinja2

from pbxctl.core import chanvars
from pbxctl.core.errors import InputError
from pbxctl.data.callrecords import (
    FORMAT_VERSION,
    FREESWITCH_MARK,
    FREESWITCH_RECORD_FIELDS,
)
from pbxctl.data.prompts import WELCOME_DEFAULT
from pbxctl.pbx.freeswitch_modules import MODULES
from provisioning.model import PATHS, Inventory, Seat, Site
from provisioning.render_asterisk import (
    DEFAULT_PROMPT_DIR,
    MENU_TIMEOUT,
    SIP_PORT,
    RenderedFile,
    site_seats,
)
from provisioning.secrets import Secrets
from provisioning.templates import dialplans_dir

ESL_PORT = 8084  # our outbound ESL server on the CTI (FreeSWITCH `socket` connects to it)
ESL_INBOUND_PORT = 8021  # each site's own event socket (operations, notification calls)
RTP_PORTS = (16384, 32767)
MIN_PING = 5  # sofia refuses a gateway ping below 5 s ("invalid ping!") and pings not at all
DOMAIN = "pbxctl"
RELOAD: dict[str, str | None] = {
    "freeswitch.xml": "reloadxml",
    "sofia.conf.xml": "reloadxml; sofia profile restart all",
    "directory.xml": "reloadxml",
    "dialplan.xml": "reloadxml",
    "callcenter.conf.xml": "reload mod_callcenter",
    "cdr_csv.conf.xml": "reload mod_cdr_csv",
    "acl.conf.xml": "reloadacl",
    # Read at start only: a change needs a restart of the site.
    "modules.conf.xml": None, "switch.conf.xml": None, "event_socket.conf.xml": None,
    "logfile.conf.xml": None, "console.conf.xml": None, "db.conf.xml": None,
    "hash.conf.xml": None, "spandsp.conf.xml": None, "opus.conf.xml": None,
}
# The settings files every site has besides its SIP, dialplan, directory and queues: name →
# what it is (the comment in the file).
# SIP transaction timeout on every profile (sofia's timer-T1X64; default 32 s): how long a
# ping or an INVITE waits for a switch that stopped answering before it counts as failed.
TRANSACTION_TIMEOUT_MS = 2000
CORE_FILES = {
    "modules.conf": "the modules a pbxctl site loads", "switch.conf": "core settings",
    "event_socket.conf": "inbound event socket", "acl.conf": "who may connect",
    "logfile.conf": "the log file", "console.conf": "console logging",
    "db.conf": "mod_db", "hash.conf": "mod_hash", "spandsp.conf": "mod_spandsp (DTMF, tones)",
    "opus.conf": "mod_opus", "cdr_csv.conf": "call records (pbxctl's call log)",
}
# XML 1.0 cannot carry these at all, escaped or not.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xml_safe(value: object) -> str:
    text = str(value)
    bad = _NOT_XML.search(text)
    if bad:
        raise InputError(f"control character {bad.group()!r} in value {text!r}: "
                         "it cannot go into a FreeSWITCH XML file")
    if "${" in text or "$$" in text:  # FreeSWITCH's preprocessor would expand it
        raise InputError(f"value {text!r} holds FreeSWITCH variable syntax ($${{…}}, ${{…}})")
    return text


def _finalize(value: object) -> object:
    return xml_safe(value) if isinstance(value, str) else value


@lru_cache(maxsize=4)
def _env(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory), undefined=jinja2.StrictUndefined,
        autoescape=True, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        finalize=_finalize)
    env.filters["regex"] = lambda v: re.escape(xml_safe(v))
    env.globals["V"] = chanvars.as_template_vars()
    return env


def _render(template: str, **ctx: Any) -> str:
    return _env(str(dialplans_dir())).get_template(f"freeswitch/{template}").render(**ctx)


class RenderedXml(RenderedFile):
    """A rendered file of a FreeSWITCH site: its reload command is FreeSWITCH's."""

    @property
    def reload(self) -> str | None:
        return RELOAD[self.name]


@dataclass(frozen=True)
class _Gateway:
    name: str
    remote: IPv4Address
    context: str


@dataclass(frozen=True)
class _Profile:
    name: str
    address: IPv4Address
    context: str
    gateways: tuple[_Gateway, ...]


@dataclass(frozen=True)
class _SeatView:
    id: str
    name: str
    extension: str
    kind: str
    context: str
    secret: str


@dataclass(frozen=True)
class _QueueView:
    name: str
    comment: str
    prefecture: str
    members: tuple[Seat, ...]
    max_wait: int


def _profiles(site: Site, inv: Inventory) -> list[_Profile]:
    out = []
    for path in PATHS:
        gws: list[_Gateway] = []
        if site.role == "province":
            gws = [_Gateway(f"gw-{p.code.lower()}-{path}", p.gateway.addr(path), "from-gateways")
                   for p in inv.prefectures]
            context = "from-gateways"
        elif site.role == "gateway":
            assert site.prefecture is not None
            gws = [_Gateway(f"province-{path}", inv.province.pbx.addr(path), "from-trunk"),
                   _Gateway(f"lss-{path}", site.prefecture.lss.addr(path), "from-trunk")]
            context = "public"
        else:
            assert site.prefecture is not None
            gws = [_Gateway(f"gw-{path}", site.prefecture.gateway.addr(path), "from-gateway")]
            context = "from-gateway"
        out.append(_Profile(f"switch-{path}", site.host.addr(path), context, tuple(gws)))
    return out


def _queues(site: Site, inv: Inventory) -> list[_QueueView]:
    opts = inv.province.options
    if site.role == "province":
        qs = [_QueueView(p.queue, f"{p.code} {p.name}", p.code, p.agents, opts.overflow_wait)
              for p in inv.prefectures]
        qs.append(_QueueView(inv.province.supervisor_queue, "provincial supervisors",
                             inv.province.code, inv.province.supervisors, opts.queue_timeout))
        return qs
    if site.role == "lss":
        p = site.prefecture
        assert p is not None
        return [_QueueView(p.lss_queue, f"{p.code} survivable", p.code, p.agents,
                           opts.queue_timeout)]
    return []


def trunk_peers(site: Site, inv: Inventory) -> list[IPv4Address]:
    """The addresses that may send this site SIP without a password: its trunks' far ends
    (and, at a gateway, the PSTN media gateway callers come through)."""
    peers = [g.remote for p in _profiles(site, inv) for g in p.gateways]
    if site.role == "gateway":
        assert site.prefecture is not None
        peers += [site.prefecture.pstn_gateway.addr(x) for x in PATHS]
    return sorted(set(peers))


def _core_files(inv: Inventory, site: Site, secrets: Secrets) -> dict[str, str]:
    cti = inv.province.cti
    # A gateway runs no queue (and mod_callcenter will not load without its queues file).
    modules = [m for m in MODULES if site.role != "gateway" or m != "mod_callcenter"]
    ctx = {"modules": modules, "max_sessions": 1000, "sessions_per_second": 100,
           "rtp_ports": RTP_PORTS, "esl_address": site.host.a, "esl_port": ESL_INBOUND_PORT,
           "esl_password": secrets.ami[site.name], "trunk_peers": trunk_peers(site, inv),
           "esl_peers": sorted({site.host.a, site.host.b, cti.a, cti.b}),
           "site_name": site.name, "cdr_fields": FREESWITCH_RECORD_FIELDS,
           "cdr_mark": FREESWITCH_MARK, "cdr_version": FORMAT_VERSION}
    return {f"{name}.xml": _render("core.conf.xml.j2", name=name, what=what, **ctx)
            for name, what in CORE_FILES.items()}


def render_site(inv: Inventory, site: Site, secrets: Secrets, *,
                prompt_dir: str = DEFAULT_PROMPT_DIR) -> dict[str, RenderedXml]:
    opts = inv.province.options
    # Supervisors have the listen/whisper/barge codes besides seat dialing (province only).
    ctx = {"seat": "seats", "agent": "seats", "terminal": "seats",
           "supervisor": "supervisors" if site.role == "province" else "seats"}
    seats = [_SeatView(s.id, s.name, s.extension, s.kind, ctx[s.kind], secrets.sip[s.id])
             for s in site_seats(site, inv)]
    files = {"sofia.conf.xml": _render("sofia.conf.xml.j2", site=site, options=opts,
                                       profiles=_profiles(site, inv), sip_port=SIP_PORT,
                                       ping=max(opts.qualify_frequency, MIN_PING),
                                       t1x64_ms=TRANSACTION_TIMEOUT_MS,
                                       domain=DOMAIN,
                                       seats=seats),
             "directory.xml": _render("directory.xml.j2", site=site, seats=seats,
                                      domain=DOMAIN),
             "freeswitch.xml": _render("freeswitch.xml.j2", site=site),
             **_core_files(inv, site, secrets)}
    if site.role == "gateway":
        pref = site.prefecture
        assert pref is not None
        files["dialplan.xml"] = _render(
            "dialplan_gateway.xml.j2", site=site, pref=pref, options=opts,
            cti=[inv.province.cti.a, inv.province.cti.b], esl_port=ESL_PORT,
            prompt_dir=prompt_dir, welcome_default=WELCOME_DEFAULT, paths=PATHS,
            menu_timeout_ms=MENU_TIMEOUT * 1000)
    else:
        queues = _queues(site, inv)
        entry = [q for q in queues if q.name != inv.province.supervisor_queue]
        files["dialplan.xml"] = _render(
            "dialplan_acd.xml.j2", site=site, options=opts, seats=seats, domain=DOMAIN,
            inbound_context="from-gateways" if site.role == "province" else "from-gateway",
            entry_queues=entry, mode="central" if site.role == "province" else "survivable",
            cti=[inv.province.cti.a, inv.province.cti.b], esl_port=ESL_PORT,
            prompt_dir=prompt_dir, spy_agents=[a for p in inv.prefectures for a in p.agents]
            if site.role == "province" else [],
            overflow=inv.province.supervisor_queue if site.role == "province" else "")
        agents = {m.id: m for q in queues for m in q.members}
        files["callcenter.conf.xml"] = _render(
            "callcenter.conf.xml.j2", site=site, options=opts, queues=queues,
            agents=list(agents.values()), domain=DOMAIN)
    return {name: RenderedXml(name, text) for name, text in sorted(files.items())}


def render_all(inv: Inventory, secrets: Secrets, *, site: str | None = None,
               deploy_root: str | None = None) -> dict[str, dict[str, RenderedXml]]:
    sites = [inv.site(site)] if site else list(inv.sites())
    return {s.name: render_site(inv, s, secrets,
                                prompt_dir=(f"{deploy_root}/{s.name}/sounds/pbxctl"
                                            if deploy_root else DEFAULT_PROMPT_DIR))
            for s in sites}

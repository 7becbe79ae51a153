"""Asterisk renderers: pure functions from the model (plus secrets) to file texts.

Each output file knows the command that makes a running Asterisk pick it up; files with no
reload command need a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from pbxctl.data.prompts import WELCOME_DEFAULT
from pbxctl.pbx.asterisk_modules import DEFAULT_MAJOR, modules_for, traits
from provisioning.model import PATHS, Inventory, Prefecture, Seat, Site
from provisioning.secrets import Secrets
from provisioning.sensitive import mode_for
from provisioning.templates import render

SIP_PORT = 5060
AMI_PORT = 5038
AMI_USER = "pbxctl"  # the operations user of the rendered manager.conf
AMI_USERS = {"ops": AMI_USER, "watch": "pbxctl-watch", "notify": "pbxctl-notify",
             "console": "pbxctl-console"}
LOCAL_WELCOME = "pls-hold-while-try"  # stock prompt until the prompt catalogue lands

RELOAD: dict[str, str | None] = {
    "pjsip.conf": "module reload res_pjsip.so",
    "extensions.conf": "dialplan reload",
    "queues.conf": "module reload app_queue.so",
    "manager.conf": "manager reload",
    "rtp.conf": "module reload res_rtp_asterisk.so",
    "musiconhold.conf": "moh reload",
    "logger.conf": "logger reload",
    "modules.conf": None,
    "asterisk.conf": None,
}


@dataclass(frozen=True)
class RenderedFile:
    name: str
    text: str

    @property
    def mode(self) -> int:
        """0640 when the file holds a secret (pjsip.conf, manager.conf, directory.xml)."""
        return mode_for(self.name)

    @property
    def reload(self) -> str | None:
        """CLI command that applies this file to a running Asterisk; None: restart needed."""
        return RELOAD[self.name]


@dataclass(frozen=True)
class _Transport:
    path: str
    address: IPv4Address


@dataclass(frozen=True)
class _Trunk:
    name: str
    path: str
    remote: IPv4Address
    context: str


@dataclass(frozen=True)
class _SeatView:
    id: str
    name: str
    extension: str
    context: str
    secret: str


@dataclass(frozen=True)
class _Queue:
    name: str
    comment: str
    members: tuple[Seat, ...]


def _trunks(site: Site, inv: Inventory) -> list[_Trunk]:
    out: list[_Trunk] = []
    if site.role == "province":
        for p in inv.prefectures:
            out += [_Trunk(f"gw-{p.code.lower()}-{path}", path, p.gateway.addr(path),
                           "from-gateways") for path in PATHS]
    elif site.role == "gateway":
        assert site.prefecture is not None
        out += [_Trunk(f"province-{path}", path, inv.province.pbx.addr(path), "from-trunk")
                for path in PATHS]
        out += [_Trunk(f"lss-{path}", path, site.prefecture.lss.addr(path), "from-trunk")
                for path in PATHS]
    else:
        assert site.prefecture is not None
        out += [_Trunk(f"gw-{path}", path, site.prefecture.gateway.addr(path), "from-gateway")
                for path in PATHS]
    return out


def site_seats(site: Site, inv: Inventory) -> tuple[Seat, ...]:
    """Seats registered at this site: all of them at the province; a prefecture's own agents
    at its LSS (they re-register there when the province is gone); none at a gateway."""
    if site.role == "province":
        return inv.all_seats()
    if site.role == "lss":
        assert site.prefecture is not None
        return site.prefecture.agents
    return ()


def _seat_views(seats: tuple[Seat, ...], secrets: Secrets) -> list[_SeatView]:
    ctx = {"agent": "seats", "terminal": "seats", "supervisor": "supervisors"}
    return [_SeatView(s.id, s.name, s.extension, ctx[s.kind], secrets.sip[s.id]) for s in seats]


def _queues(site: Site, inv: Inventory) -> list[_Queue]:
    if site.role == "province":
        qs = [_Queue(p.queue, f"{p.code} {p.name}", p.agents) for p in inv.prefectures]
        qs.append(_Queue(inv.province.supervisor_queue, "provincial supervisors: overflow",
                         inv.province.supervisors))
        return qs
    if site.role == "lss":
        p = site.prefecture
        assert p is not None
        return [_Queue(p.lss_queue, f"{p.code} survivable queue", p.agents)]
    return []


def _manager_permit(site: Site, inv: Inventory) -> dict[str, list[IPv4Address]]:
    """Exact addresses per AMI user: operations from the CTI hosts, the site itself and the
    configured management hosts; the watcher and the notifier from the site itself (they run
    beside it); the notifier and the web console also from the CTI hosts."""
    own = [site.host.a, site.host.b]
    cti = [inv.province.cti.a, inv.province.cti.b]
    return {"ops": _unique([*cti, *own, *inv.province.options.ami_permit]), "watch": own,
            "notify": _unique([*own, *cti]), "console": _unique([*own, *cti])}


def _unique(addrs: list[IPv4Address]) -> list[IPv4Address]:
    return list(dict.fromkeys(addrs))


DEFAULT_PROMPT_DIR = "/var/lib/asterisk/sounds/pbxctl"
MENU_TIMEOUT = 6


def render_site(inv: Inventory, site: Site, secrets: Secrets, *, major: int = DEFAULT_MAJOR,
                prompt_dir: str = DEFAULT_PROMPT_DIR) -> dict[str, RenderedFile]:
    """Every config file of ``site``, by file name. ``prompt_dir`` is where published prompts
    live on that site's disk (see pbxctl.ops.publish)."""
    opts = inv.province.options
    pref: Prefecture | None = site.prefecture
    files: dict[str, str] = {}
    files["pjsip.conf"] = render(
        "asterisk/pjsip.conf.j2", site=site, sip_port=SIP_PORT, options=opts,
        transports=[_Transport(path, site.host.addr(path)) for path in PATHS],
        pstn=([pref.pstn_gateway.a, pref.pstn_gateway.b]
              if site.role == "gateway" and pref is not None else []),
        trunks=_trunks(site, inv), seats=_seat_views(site_seats(site, inv), secrets))
    if site.role == "gateway":
        assert pref is not None
        files["extensions.conf"] = render(
            "asterisk/extensions_gateway.conf.j2", site=site, pref=pref, options=opts,
            cti=[inv.province.cti.a, inv.province.cti.b], cti_port=inv.province.cti_port,
            ivr=[pref.ivr_host.a, pref.ivr_host.b], local_prompt=LOCAL_WELCOME,
            prompt_dir=prompt_dir, welcome_default=WELCOME_DEFAULT, menu_timeout=MENU_TIMEOUT)
    elif site.role == "province":
        files["extensions.conf"] = render(
            "asterisk/extensions_province.conf.j2", site=site, options=opts,
            prefectures=inv.prefectures, seats=inv.all_seats(),
            supervisor_queue=inv.province.supervisor_queue,
            cti=[inv.province.cti.a, inv.province.cti.b], cti_port=inv.province.cti_port,
            prompt_dir=prompt_dir, answered=traits(major).queue_gosub("pbxctl-answered"))
    else:
        assert pref is not None
        files["extensions.conf"] = render(
            "asterisk/extensions_lss.conf.j2", site=site, pref=pref, options=opts,
            seats=pref.agents, answered=traits(major).queue_gosub("pbxctl-answered"))
    files["queues.conf"] = render("asterisk/queues.conf.j2", site=site, options=opts,
                                  queues=_queues(site, inv),
                                  monitor_type=traits(major).queue_monitor_type)
    files["manager.conf"] = render(
        "asterisk/manager.conf.j2", site=site, bind=site.host.a, port=AMI_PORT,
        users=AMI_USERS, permit=_manager_permit(site, inv),
        secrets={"ops": secrets.ami[site.name], "watch": secrets.ami_watch.get(site.name, ""),
                 "notify": secrets.ami_notify.get(site.name, ""),
                 "console": secrets.ami_console.get(site.name, "")})
    for which in ("modules.conf", "logger.conf", "rtp.conf", "musiconhold.conf",
                  "asterisk.conf"):
        files[which] = render("asterisk/static.conf.j2", which=which, site=site,
                              modules=modules_for(major))
    return {name: RenderedFile(name, text) for name, text in sorted(files.items())}


def render_all(inv: Inventory, secrets: Secrets, *, site: str | None = None,
               major: int = DEFAULT_MAJOR,
               deploy_root: str | None = None) -> dict[str, dict[str, RenderedFile]]:
    """``deploy_root``: sites laid out as ROOT/<site>/ (the lab, tests); prompts then live in
    ROOT/<site>/sounds/pbxctl instead of the Debian default."""
    sites = [inv.site(site)] if site else list(inv.sites())
    return {s.name: render_site(inv, s, secrets, major=major,
                                prompt_dir=(f"{deploy_root}/{s.name}/sounds/pbxctl"
                                            if deploy_root else DEFAULT_PROMPT_DIR))
            for s in sites}

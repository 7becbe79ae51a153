"""Run a rendered site in a sandboxed Asterisk or FreeSWITCH (tests, the lab, `provision check`)."""

from __future__ import annotations

from pathlib import Path

from pbxctl.lab.sandbox.asterisk import AsteriskBinary, AsteriskInstance
from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance
from provisioning.endpoints import site_ami
from provisioning.model import Inventory, Site
from provisioning.render_asterisk import RenderedFile
from provisioning.secrets import Secrets


def sandbox_for(site: Site, files: dict[str, RenderedFile], secrets: Secrets, root: Path, *,
                binary: AsteriskBinary | None = None, verbose_log: bool = False,
                netns: str | None = None) -> AsteriskInstance:
    configs = {n: f.text for n, f in files.items()}
    if verbose_log:
        # Tests read what Asterisk itself says it played ("Playing '…'" at verbose 3).
        configs["logger.conf"] += "full => notice,warning,error,verbose(3),dtmf\n"
    return AsteriskInstance(name=site.name, root=root, address=str(site.host.a),
                            configs=configs, ami=site_ami(site, secrets), binary=binary,
                            netns=netns)


def freeswitch_for(inv: Inventory, site: Site, secrets: Secrets, root: Path, *,
                   prompt_dir: str | None = None) -> FreeSwitchInstance:
    """A rendered FreeSWITCH site, run as rendered: its addresses, its event socket and that
    socket's secret (the site's operations secret), ready when both switch profiles run."""
    from provisioning.render_freeswitch import ESL_INBOUND_PORT, render_site

    files = render_site(inv, site, secrets, **({"prompt_dir": prompt_dir} if prompt_dir else {}))
    return FreeSwitchInstance(name=site.name, root=root, address=str(site.host.a),
                              site_files={f: r.text for f, r in files.items()},
                              esl_port=ESL_INBOUND_PORT, esl_password=secrets.ami[site.name],
                              profiles=("switch-a", "switch-b"))

"""Run a rendered site in a sandboxed Asterisk (tests, the lab, `provision check`)."""

from __future__ import annotations

from pathlib import Path

from pbxctl.lab.sandbox.asterisk import AsteriskBinary, AsteriskInstance
from provisioning.endpoints import site_ami
from provisioning.model import Site
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

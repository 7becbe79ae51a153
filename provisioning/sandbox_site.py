"""Run a rendered site in a sandboxed Asterisk (tests, the lab, `provision check`)."""

from __future__ import annotations

from pathlib import Path

from pbxctl.sandbox.asterisk import AmiEndpoint, AsteriskBinary, AsteriskInstance

from .model import Site
from .render_asterisk import AMI_PORT, RenderedFile
from .secrets import Secrets


def site_ami(site: Site, secrets: Secrets) -> AmiEndpoint:
    return AmiEndpoint(str(site.host.a), AMI_PORT, "pbxctl", secrets.ami[site.name])


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

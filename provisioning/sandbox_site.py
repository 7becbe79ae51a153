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
                binary: AsteriskBinary | None = None, verbose_log: bool = False
                ) -> AsteriskInstance:
    return AsteriskInstance(name=site.name, root=root, address=str(site.host.a),
                            configs={n: f.text for n, f in files.items()},
                            ami=site_ami(site, secrets), binary=binary,
                            verbose_log=verbose_log)

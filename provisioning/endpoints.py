"""Where a rendered site's interfaces are reached, from the model and its secrets."""

from __future__ import annotations

from pbxctl.pbx.ami import AmiEndpoint
from provisioning.model import Site
from provisioning.render_asterisk import AMI_PORT, AMI_USER
from provisioning.secrets import Secrets


def site_ami(site: Site, secrets: Secrets) -> AmiEndpoint:
    """The manager interface ``provision apply`` and the watchers sign in to (path A)."""
    return AmiEndpoint(str(site.host.a), AMI_PORT, AMI_USER, secrets.ami[site.name])

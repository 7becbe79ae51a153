"""pbxctl: provision and run a two-tier utility customer-service call center on a real PBX."""

__version__ = "0.1.0"

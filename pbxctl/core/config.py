"""The daemons' configuration, layered like wazo's services:

    command line  >  environment (PBXCTL_<SECTION>_<KEY>)  >  config file + conf.d/*.yaml
    >  defaults

One YAML file (``/etc/pbxctl/pbxctl.yaml``, or ``--config FILE`` / ``PBXCTL_CONFIG``) holds a
section per daemon (``agi``, ``esl``, ``collector``, ``dispatcher``, ``survive``, ``uplink``)
and the shared ``database`` section; ``conf.d/*.yaml`` beside it is merged over it in name
order. Secrets (the database password, AMI/ESL secrets) live in the config file or in the
file named by ``secrets_file`` (default: ``secrets.yaml`` beside the config, when present),
which must not be readable by others — never on the command line.

Every bad value is one :class:`~pbxctl.core.errors.InputError` naming file, line and key
(exit 3).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core.errors import InputError
from pbxctl.core.yamlsrc import Loc, LocDict, load_yaml

DEFAULT_PATH = Path("/etc/pbxctl/pbxctl.yaml")
SECTIONS = ("database", "agi", "esl", "collector", "dispatcher", "survive", "uplink", "relay",
            "console")
# Older environment names, still honoured (lowest priority of the environment layer).
LEGACY_ENV = {"PBXCTL_DSN": ("database", "dsn"), "PBXCTL_AMI_SECRET": ("*", "ami_secret")}


@dataclass(frozen=True)
class Option:
    """One setting of a section: its key (also the argparse dest), how to read it, default."""

    key: str
    kind: Callable[[Any], Any] = str
    default: Any = None
    secret: bool = False
    help: str = ""


@dataclass
class ConfigFile:
    """The merged config files: section → key → (value, where it was written)."""

    paths: list[Path] = field(default_factory=list)
    values: dict[str, dict[str, tuple[Any, Loc]]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> tuple[Any, Loc] | None:
        return self.values.get(section, {}).get(key)


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """``--config`` > ``PBXCTL_CONFIG`` > /etc/pbxctl/pbxctl.yaml when it exists."""
    if explicit:
        return Path(explicit)
    if environ.get("PBXCTL_CONFIG"):
        return Path(environ["PBXCTL_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_config(path: Path | None) -> ConfigFile:
    """Read the config file, its conf.d/ and its secrets file. No file: an empty config."""
    cfg = ConfigFile()
    if path is None:
        return cfg
    if not path.is_file():
        raise InputError(f"{path}: config file not found",
                         hint="pass --config FILE, set PBXCTL_CONFIG, or create it")
    main = load_yaml(path)
    _merge(cfg, main, path)
    confd = path.parent / "conf.d"
    if confd.is_dir():
        for extra in sorted(confd.glob("*.yaml")):
            _merge(cfg, load_yaml(extra), extra)
    secrets = _secrets_path(main, path)
    if secrets is not None:
        _check_private(secrets)
        _merge(cfg, load_yaml(secrets), secrets)
    return cfg


def _secrets_path(main: LocDict, path: Path) -> Path | None:
    if "secrets_file" in main:
        raw = main["secrets_file"]
        if not isinstance(raw, str) or not raw:
            raise InputError(f"{main.loc_of('secrets_file')}: secrets_file: expected a path")
        found = Path(raw) if Path(raw).is_absolute() else path.parent / raw
        if not found.is_file():
            raise InputError(f"{main.loc_of('secrets_file')}: secrets_file: {found} not found")
        return found
    beside = path.parent / "secrets.yaml"
    return beside if beside.is_file() else None


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & stat.S_IROTH or mode & stat.S_IWOTH:
        raise InputError(f"{path}: secrets file is readable by others "
                         f"(mode {stat.S_IMODE(mode):04o})",
                         hint=f"chmod 0600 {path} (or 0640 with the service's group)")


def _merge(cfg: ConfigFile, data: LocDict, path: Path) -> None:
    cfg.paths.append(path)
    for section, body in data.items():
        if section == "secrets_file":
            continue
        if section not in SECTIONS:
            raise InputError(f"{data.loc_of(section)}: unknown section {section!r} "
                             f"(known: {', '.join(SECTIONS)})")
        if not isinstance(body, LocDict):
            raise InputError(f"{data.loc_of(section)}: {section}: expected a mapping of keys")
        into = cfg.values.setdefault(section, {})
        for key, value in body.items():
            into[key] = (value, body.loc_of(key))


def _coerce(option: Option, value: Any, where: str) -> Any:
    if option.kind is bool and isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise InputError(f"{where}: expected true or false, got {value!r}")
    if option.kind is list and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    try:
        out = option.kind(value)
    except (TypeError, ValueError):
        shown = "(secret)" if option.secret else repr(value)
        raise InputError(f"{where}: expected {getattr(option.kind, '__name__', 'a value')}, "
                         f"got {shown}") from None
    if option.kind is list and not all(isinstance(v, str | int | float) for v in out):
        raise InputError(f"{where}: expected a list of plain values")
    return out


def resolve(section: str, options: Sequence[Option], *, cli: Mapping[str, Any],
            environ: Mapping[str, str], config: ConfigFile) -> dict[str, Any]:
    """Each option's value from the highest layer that sets it. ``cli`` holds argparse's
    values, ``None`` meaning "not given". Unknown keys in the section are refused."""
    known = {o.key for o in options}
    for key, (_, loc) in config.values.get(section, {}).items():
        if key not in known and section != "database":
            raise InputError(f"{loc}: {section}.{key}: unknown key "
                             f"(known: {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for opt in options:
        env_name = f"PBXCTL_{section.upper()}_{opt.key.upper()}"
        legacy = [n for n, (s, k) in LEGACY_ENV.items() if k == opt.key and s in (section, "*")]
        if cli.get(opt.key) is not None:
            out[opt.key] = _coerce(opt, cli[opt.key], f"--{opt.key.replace('_', '-')}")
        elif env_name in environ:
            out[opt.key] = _coerce(opt, environ[env_name], f"environment {env_name}")
        elif found := config.get(section, opt.key):
            out[opt.key] = _coerce(opt, found[0], f"{found[1]}: {section}.{opt.key}")
        elif legacy and legacy[0] in environ:
            out[opt.key] = _coerce(opt, environ[legacy[0]], f"environment {legacy[0]}")
        else:
            out[opt.key] = opt.default
    return out


# -- the shared database section -------------------------------------------------------------
DATABASE = (Option("dsn", default="", help="libpq conninfo without the password"),
            Option("password", secret=True))


def database_conninfo(*, environ: Mapping[str, str], config: ConfigFile,
                      cli_dsn: str | None = None) -> str:
    """The store's conninfo: ``database.dsn`` with ``database.password`` added (the password
    never travels on a command line). Empty when no database is configured."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    db = resolve("database", DATABASE, cli={"dsn": cli_dsn}, environ=environ, config=config)
    dsn = str(db["dsn"] or "")
    if not dsn:
        return ""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception as exc:  # noqa: BLE001 -- psycopg's parse errors have no common base
        raise InputError(f"database.dsn: not a libpq conninfo ({type(exc).__name__})") from None
    if cli_dsn and "password" in parts:
        raise InputError("--dsn carries a password: it would show in ps and in logs",
                         hint="put it in the config's secrets file (database.password)")
    if db["password"] and "password" not in parts:
        return make_conninfo(dsn, password=str(db["password"]))
    return dsn


def umask_private() -> None:
    """Files a daemon writes (state, spool) are not for others."""
    os.umask(0o027)

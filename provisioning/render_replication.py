"""Self-service data per prefecture by PostgreSQL logical replication: the SQL, from the model.

Pure (model in, text out), like the PBX renderers. Two kinds of file:

* ``province.sql`` — run on the province database: per prefecture a replication role
  (``pbxctl_repl_<code>``, LOGIN REPLICATION, SELECT on the three tables; its password is set
  by the operator, never rendered) and a publication ``pbxctl_selfservice_<code>`` of
  accounts, bills and outages with a row filter ``prefecture = '<CODE>'``. Re-runnable: an
  existing publication gets its table list set again (dropping it would break the streaming
  subscription).
* ``<code>.sql`` — run on that prefecture's IVR database (after `pbxctl db migrate`): one
  subscription to its publication. The connection names both of the province database's
  addresses (path A, then B: libpq tries them in order) and reads the password from a
  passfile on the IVR host (0600, owned by postgres), so no password sits in the catalog or
  in this file.

Names come from validated codes (upper-case letters and digits) and every literal is quoted
here anyway: the SQL never depends on what a code may contain.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.model import Inventory, Prefecture

TABLES = ("accounts", "bills", "outages")
DEFAULT_PASSFILE = "/etc/pbxctl/replication.pgpass"
PG_PORT = 5432


@dataclass(frozen=True)
class SqlFile:
    name: str
    text: str
    mode: int = 0o644  # no secret in it


def publication_name(code: str) -> str:
    return f"pbxctl_selfservice_{code.lower()}"


def role_name(code: str) -> str:
    return f"pbxctl_repl_{code.lower()}"


def literal(value: str) -> str:
    """An SQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def conninfo_value(value: str) -> str:
    """One libpq conninfo value: bare when it can be, else quoted (backslash and quote
    escaped)."""
    if value and not any(ch in value for ch in " '\\\t\n="):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def province_sql(inv: Inventory, prefectures: list[Prefecture] | None = None) -> str:
    lines = ["-- pbxctl: publications of the self-service data, one per prefecture.",
             "-- Rendered by `pbxctl provision render`; run on the province database.",
             "-- Each role's password: ALTER ROLE … PASSWORD, by the operator (never rendered).",
             ""]
    for p in prefectures or list(inv.prefectures):
        role, pub = ident(role_name(p.code)), ident(publication_name(p.code))
        where = f"WHERE (prefecture = {literal(p.code)})"
        tables = ", ".join(f"{t} {where}" for t in TABLES)
        lines += [
            f"-- {p.code} {p.name}: its IVR at {p.ivr_host.name} ({p.ivr_host.a}, "
            f"{p.ivr_host.b})",
            "DO $pbxctl$ BEGIN",
            f"    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
            f"{literal(role_name(p.code))}) THEN",
            f"        CREATE ROLE {role} LOGIN REPLICATION;",
            "    END IF;",
            f"    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = "
            f"{literal(publication_name(p.code))}) THEN",
            f"        ALTER PUBLICATION {pub} SET TABLE {tables};",
            "    ELSE",
            f"        CREATE PUBLICATION {pub} FOR TABLE {tables};",
            "    END IF;",
            "END $pbxctl$;",
            f"GRANT SELECT ON {', '.join(TABLES)} TO {role};",
            "",
        ]
    return "\n".join(lines)


def publisher_conninfo(inv: Inventory, p: Prefecture, *, hosts: list[str] | None = None,
                       port: int = PG_PORT, passfile: str = DEFAULT_PASSFILE) -> str:
    """How ``p``'s IVR reaches the province database: by default the province host's two
    addresses (the database runs there), path A first."""
    prov = inv.province.pbx
    hosts = hosts or [str(prov.a), str(prov.b)]
    parts = {"host": ",".join(hosts), "port": ",".join([str(port)] * len(hosts)),
             "dbname": "pbxctl",
             "user": role_name(p.code), "passfile": passfile,
             "application_name": publication_name(p.code), "connect_timeout": "5"}
    return " ".join(f"{k}={conninfo_value(v)}" for k, v in parts.items())


def prefecture_sql(inv: Inventory, p: Prefecture, *, conninfo: str | None = None) -> str:
    """The subscription of ``p``'s IVR database. ``conninfo``: another way to the province
    database (the tests' sandboxes); default: both of its addresses and the passfile."""
    sub = publication_name(p.code)
    conn = conninfo or publisher_conninfo(inv, p)
    return "\n".join([
        f"-- pbxctl: {p.code} {p.name}'s slice of the self-service data, from the province.",
        f"-- Rendered by `pbxctl provision render`; run on {p.ivr_host.name}'s database after",
        "-- `pbxctl db migrate` (the tables must exist; they fill at the first sync). It cannot",
        "-- be re-run as is (CREATE SUBSCRIPTION has no IF NOT EXISTS and creates the slot",
        "-- outside any transaction): `pbxctl db replicas subscribe` skips an existing one.",
        f"CREATE SUBSCRIPTION {ident(sub)}",
        f"    CONNECTION {literal(conn)}",
        f"    PUBLICATION {ident(sub)}",
        # disable_on_error stays off: a transient error retries; `db replicas status` shows it.
        f"    WITH (slot_name = {literal(sub)}, copy_data = true);",
        "",
    ])


def render(inv: Inventory) -> dict[str, SqlFile]:
    """File name → SQL: ``province.sql`` and one ``<code>.sql`` per prefecture."""
    files = {"province.sql": SqlFile("province.sql", province_sql(inv))}
    for p in inv.prefectures:
        name = f"{p.code.lower()}.sql"
        files[name] = SqlFile(name, prefecture_sql(inv, p))
    return files

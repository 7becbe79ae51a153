"""The daemons' layered config: command line > environment > config file (+ conf.d) > defaults;
secrets never from argv; bad config is one line naming file, line and key, exit 3."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.config import (
    ConfigFile,
    Option,
    config_path,
    database_conninfo,
    load_config,
    resolve,
)
from pbxctl.core.errors import InputError

OPTIONS = (Option("port", int, 4573), Option("host", list, ["127.0.0.1"]),
           Option("grace", float, 10.0))


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    cfg_path = _write(tmp_path / "pbxctl.yaml", "agi:\n  port: 5000\n  grace: 3\n")
    _write(tmp_path / "conf.d" / "10-site.yaml", "agi:\n  grace: 4\n")
    cfg = load_config(cfg_path)
    none = {"port": None, "host": None, "grace": None}
    assert resolve("agi", OPTIONS, cli=none, environ={}, config=ConfigFile()) == \
        {"port": 4573, "host": ["127.0.0.1"], "grace": 10.0}  # defaults
    got = resolve("agi", OPTIONS, cli=none, environ={}, config=cfg)
    assert (got["port"], got["grace"]) == (5000, 4.0)  # file, then conf.d over it
    got = resolve("agi", OPTIONS, cli=none, environ={"PBXCTL_AGI_PORT": "6000",
                                                     "PBXCTL_AGI_HOST": "10.0.0.1,10.0.0.2"},
                  config=cfg)
    assert (got["port"], got["host"]) == (6000, ["10.0.0.1", "10.0.0.2"])  # environment
    got = resolve("agi", OPTIONS, cli={**none, "port": 7000}, environ={"PBXCTL_AGI_PORT": "6000"},
                  config=cfg)
    assert got["port"] == 7000  # command line above everything


def test_config_path_order(tmp_path: Path) -> None:
    assert config_path("/x.yaml", {"PBXCTL_CONFIG": "/y.yaml"}) == Path("/x.yaml")
    assert config_path(None, {"PBXCTL_CONFIG": "/y.yaml"}) == Path("/y.yaml")


def test_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path / "pbxctl.yaml", "agi:\n  host: [a]\n  port: many\n"))
    with pytest.raises(InputError) as exc:
        resolve("agi", OPTIONS, cli={}, environ={}, config=cfg)
    assert f"{tmp_path / 'pbxctl.yaml'}:3: agi.port: expected int" in exc.value.message


def test_unknown_key_and_section_are_refused(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path / "a.yaml", "agi:\n  prot: 1\n"))
    with pytest.raises(InputError, match=r"a.yaml:2: agi.prot: unknown key"):
        resolve("agi", OPTIONS, cli={}, environ={}, config=cfg)
    with pytest.raises(InputError, match=r"b.yaml:1: unknown section 'agj'"):
        load_config(_write(tmp_path / "b.yaml", "agj:\n  port: 1\n"))


def test_bad_config_is_one_line_and_exit_3_for_every_daemon(tmp_path: Path) -> None:
    bad = _write(tmp_path / "pbxctl.yaml", "agi:\n  port: [1, 2]\nesl:\n  port: x\n"
                 "collector:\n  interval: soon\nsurvive:\n  hold_down: never\n"
                 "uplink:\n  ports: 7\ndispatcher:\n  interval: later\n")
    for argv, key in ((("agi", "serve"), "agi.port"), (("esl", "serve"), "esl.port"),
                      (("calls", "collect", "--dsn", "dbname=x"), "collector.interval"),
                      (("survive", "run", "--ami-host", "127.0.0.1"), "survive.hold_down"),
                      (("uplink", "run"), "uplink.ports"),
                      (("orders", "dispatcher"), "dispatcher.interval")):
        code, _, err = run(*argv, "--config", str(bad))
        assert code == 3, (argv, err)
        first = err.splitlines()[0]
        assert first.startswith(f"pbxctl: error: {bad}:") and key in first, (argv, err)
        assert "Traceback" not in err


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    code, _, err = run("agi", "serve", "--config", str(tmp_path / "nope.yaml"))
    assert code == 3 and "config file not found" in err


def test_database_password_comes_from_the_secrets_file_only(tmp_path: Path) -> None:
    cfg_path = _write(tmp_path / "pbxctl.yaml", "database:\n  dsn: 'host=db dbname=p user=u'\n")
    _write(tmp_path / "secrets.yaml", "database:\n  password: \"s3 cr'et\"\n", mode=0o600)
    dsn = database_conninfo(environ={}, config=load_config(cfg_path))
    assert "password='s3 cr\\'et'" in dsn and "host=db" in dsn
    with pytest.raises(InputError, match="--dsn carries a password"):
        database_conninfo(environ={}, config=ConfigFile(), cli_dsn="dbname=p password=x")


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    cfg_path = _write(tmp_path / "pbxctl.yaml", "secrets_file: s.yaml\n")
    _write(tmp_path / "s.yaml", "database:\n  password: x\n", mode=0o644)
    with pytest.raises(InputError, match="readable by others") as exc:
        load_config(cfg_path)
    assert "x" not in exc.value.message.replace(str(tmp_path), "")


def test_a_password_on_the_command_line_is_refused_and_not_echoed() -> None:
    code, _, err = run("db", "migrate", "--dsn", "host=127.0.0.1 password=hunter2")
    assert code == 3 and "--dsn carries a password" in err and "hunter2" not in err

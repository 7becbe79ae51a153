"""The sample config pbxctl ships (contrib/pbxctl.yaml) loads, and every key of every section is
one its daemon knows: an operator who copies it gets no "unknown section/key" at start."""

from __future__ import annotations

import shutil
from pathlib import Path

from pbxctl.cli import calls, console, cti, orders, relay, survive, uplink
from pbxctl.core.config import DATABASE, load_config, resolve

ROOT = Path(__file__).parents[2]


def test_every_section_of_the_sample_config_is_known_to_its_daemon(tmp_path: Path) -> None:
    path = tmp_path / "pbxctl.yaml"
    shutil.copy(ROOT / "contrib" / "pbxctl.yaml", path)
    (tmp_path / "secrets.yaml").write_text("database: {password: not-a-real-one}\n")
    (tmp_path / "secrets.yaml").chmod(0o600)
    cfg = load_config(path)
    options = {"database": DATABASE, "agi": cti.AGI_OPTIONS, "esl": cti.ESL_OPTIONS,
               "collector": calls.COLLECTOR_OPTIONS, "dispatcher": orders.DISPATCHER_OPTIONS,
               "survive": survive.OPTIONS, "relay": relay.OPTIONS, "uplink": uplink.OPTIONS,
               "console": console.OPTIONS}
    assert set(cfg.values) == set(options)  # the sample shows every daemon's section
    for section, opts in options.items():
        resolve(section, opts, cli={}, environ={}, config=cfg)  # raises on an unknown key
    got = resolve("console", console.OPTIONS, cli={}, environ={}, config=cfg)
    assert got["cookie_secure"] is True and got["host"] == "127.0.0.1"


def test_every_systemd_unit_starts_a_real_verb_with_the_config_and_nothing_secret() -> None:
    from pbxctl.cli.app import build_parser

    units = sorted((ROOT / "contrib" / "systemd").glob("*.service"))
    assert "pbxctl-console.service" in {u.name for u in units}
    for unit in units:
        lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
        assert len(lines) == 1, unit.name
        argv = lines[0].removeprefix("ExecStart=").split()
        assert argv[0].endswith("/pbxctl"), unit.name
        assert "--config" in argv, unit.name
        assert not any(w in " ".join(argv).lower() for w in ("password", "secret", "dsn")), \
            unit.name
        args = build_parser(argv[1:]).parse_args(argv[1:])  # a usage error exits (fails)
        assert callable(args.func), unit.name

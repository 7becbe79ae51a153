"""The CLI in-process: exit codes and messages come from one mapping."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.errors import LabStateError, MissingDependencyError, PortInUseError
from pbxctl.core.net import require_free, require_loopback
from pbxctl.core.procs import require_binary


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    code, out, _ = run("host", "version")
    assert code == 0 and out.startswith("pbxctl ")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--help")[0] == 0
    assert "lab" in capsys.readouterr().out


def test_no_command_is_a_usage_error() -> None:
    code, _, err = run()
    assert code == 2 and "NOUN" in err


def test_unknown_command_is_a_usage_error() -> None:
    assert run("frobnicate")[0] == 2


def test_lab_down_without_lab_maps_to_its_exit_code(tmp_path: Path) -> None:
    code, _, err = run("lab", "down", environ={"PBXCTL_LAB_DIR": str(tmp_path / "none")})
    assert code == LabStateError.exit_code
    assert "pbxctl: error: no lab in" in err and "hint:" in err
    assert "Traceback" not in err


def test_verbose_adds_traceback(tmp_path: Path) -> None:
    code, _, err = run("-v", "lab", "down", environ={"PBXCTL_LAB_DIR": str(tmp_path / "none")})
    assert code == LabStateError.exit_code and "Traceback" in err


def test_lab_status_when_down(tmp_path: Path) -> None:
    code, out, _ = run("lab", "status", "--json", environ={"PBXCTL_LAB_DIR": str(tmp_path)})
    assert code == 3 and '"up": false' in out


def test_db_migrate_unreachable_database_is_one_line() -> None:
    code, _, err = run("db", "migrate", "--dsn",
                       "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1")
    assert code == 9, err
    assert err.count("\n") == 2 and "PostgreSQL not reachable" in err


def test_missing_binary_says_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError) as exc:
        require_binary("sipp")
    assert "make setup" in str(exc.value)


def test_occupied_port_is_reported() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            require_free("127.0.0.1", port, what="test")


def test_sandbox_refuses_non_loopback() -> None:
    from pbxctl.core.errors import InputError

    with pytest.raises(InputError, match="not a loopback"):
        require_loopback("10.0.0.1")


def test_a_drill_without_a_namespace_lab_says_how_to_start_one(tmp_path: Path) -> None:
    code, _, err = run("drill", "run", "wan-cut", "--prefecture", "HZ",
                       environ={"PBXCTL_LAB_DIR": str(tmp_path / "nolab")})
    assert code == 2
    assert "no namespace lab in" in err and "pbxctl lab up --inventory" in err


def test_uplink_and_drill_refuse_bad_arguments() -> None:
    code, _, err = run("uplink", "run", "--ports", "etha")
    assert code == 2 and "primary and at least one backup" in err
    code, _, err = run("drill", "run", "meteor", "--prefecture", "HZ")
    assert code == 2  # argparse: not one of the faults


def test_survive_checks_its_arguments_before_connecting() -> None:
    # Nothing is contacted: the bad argument is refused first.
    code, _, err = run("survive", "run", "--ami-host", "127.0.0.1", "--cti", "nocolon")
    assert code == 2 and "--cti 'nocolon': expected HOST:PORT" in err
    code, _, err = run("survive", "run", "--ami-host", "127.0.0.1", "--failback-window", "2-5")
    assert code == 3 and "failback window: '2-5' is not HH:MM-HH:MM" in err


# -- `pbxctl <noun> <verb>` and the old spellings ------------------------------------------------
# Each old spelling must still reach the same command and say, once, on stderr, what replaces
# it. The commands are chosen so that they fail fast without a PBX (the same exit code as the
# new spelling proves the same command ran).
ALIAS_CASES = [
    (("version",), ("host", "version"), 0),
    (("doctor", "--json"), ("host", "doctor", "--json"), None),
    (("tts", "hi", "-o", "/nonexistent-dir/x.xyz"), ("tts", "say", "hi", "-o",
                                                      "/nonexistent-dir/x.xyz"), None),
    (("status", "--freeswitch", "nocolon"), ("status", "show", "--freeswitch", "nocolon"), 2),
    (("drill", "wan-cut", "--prefecture", "HZ"), ("drill", "run", "wan-cut", "--prefecture",
                                                   "HZ"), 2),
    (("uplink", "--ports", "etha"), ("uplink", "run", "--ports", "etha"), 2),
    (("survive", "--ami-host", "127.0.0.1", "--cti", "x"),
     ("survive", "run", "--ami-host", "127.0.0.1", "--cti", "x"), 2),
]


@pytest.mark.parametrize(("old", "new", "code"), ALIAS_CASES, ids=[c[0][0] for c in ALIAS_CASES])
def test_old_spelling_still_works_and_says_it_is_deprecated(
        tmp_path: Path, old: tuple[str, ...], new: tuple[str, ...], code: int | None) -> None:
    environ = {"PBXCTL_LAB_DIR": str(tmp_path / "nolab")}
    old_code, old_out, old_err = run(*old, environ=environ)
    new_code, new_out, new_err = run(*new, environ=environ)
    notice = f"`pbxctl {old[0]}` is deprecated"
    assert old_err.count(notice) == 1 and f"use `pbxctl {new[0]} {new[1]}`" in old_err
    assert notice not in new_err and "deprecated" not in new_err
    assert old_code == new_code and old_out == new_out
    if code is not None:
        assert old_code == code, old_err


def test_every_noun_lists_its_verbs_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    from pbxctl.cli.app import build_parser

    parser = build_parser()
    nouns = next(a for a in parser._actions if a.dest == "noun").choices
    assert isinstance(nouns, dict)
    assert set(nouns) >= {"lab", "agi", "esl", "db", "provision", "prompts", "tts", "status",
                          "calls", "recordings", "orders", "survive", "uplink", "drill", "host"}
    for noun, sub in nouns.items():
        assert run(noun, "--help")[0] == 0
        text = capsys.readouterr().out
        verbs = next(a for a in sub._actions if a.dest == "verb").choices
        assert isinstance(verbs, dict) and verbs, noun
        for verb in verbs:
            assert any(line.strip().startswith(verb + " ") for line in text.splitlines()), \
                (noun, verb, text)


def test_readme_and_docs_use_only_the_new_spellings() -> None:
    import re

    root = Path(__file__).parents[2]
    old = re.compile(r"pbxctl (tts|status|drill|survive|uplink|doctor|version)\b(?! "
                     r"(say|show|watch|run|doctor|version)\b)")
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "contrib" / "systemd").glob("*.service"))]
    found = [f"{p.name}: {m.group(0)}" for p in texts for m in old.finditer(p.read_text())]
    assert not found, found

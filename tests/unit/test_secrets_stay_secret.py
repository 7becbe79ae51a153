"""Secrets stay secret: rendered files that hold them are 0640 (rollback copies too), `provision
diff` masks them while still showing that one changed, and no CLI output — stdout, stderr,
--json, errors — carries a password, an AMI secret or a DSN password."""

from __future__ import annotations

import io
import json
import shutil
import stat
from pathlib import Path

import yaml

from pbxctl.cli import main
from pbxctl.core.redact import MASK, redact_text, redacted
from pbxctl.lab.lifecycle import LabState

SMALL = Path(__file__).parents[1] / "data" / "small"


def _copy(tmp_path: Path) -> tuple[Path, list[str]]:
    for f in ("province.yaml", "secrets.yaml"):
        shutil.copy(SMALL / f, tmp_path / f)
    (tmp_path / "secrets.yaml").chmod(0o600)
    data = yaml.safe_load((tmp_path / "secrets.yaml").read_text())
    secrets = [v for section in ("ami", "sip") for v in data[section].values()]
    return tmp_path / "province.yaml", secrets


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_rendered_secrets_are_0640_and_never_printed(tmp_path: Path) -> None:
    inv, secrets = _copy(tmp_path)
    sec = str(tmp_path / "secrets.yaml")
    outputs = []
    for engine in ("asterisk", "freeswitch"):
        code, text = run("provision", "render", str(inv), "--secrets", sec, "--engine", engine,
                         "--out", str(tmp_path / engine))
        assert code == 0, text
        outputs.append(text)
        for f in (tmp_path / engine).rglob("*"):
            if f.is_file():
                want = 0o640 if f.name in ("pjsip.conf", "manager.conf", "directory.xml") \
                    else 0o644
                assert stat.S_IMODE(f.stat().st_mode) == want, f
    # Deployed tree = the render; then one secret changes: the diff shows it changed, masked.
    target = tmp_path / "deployed"
    for site in (tmp_path / "asterisk").iterdir():
        shutil.copytree(site, target / site.name / "etc")
    data = yaml.safe_load(Path(sec).read_text())
    data["sip"]["hz-a001"] = "a-brand-new-secret"
    Path(sec).write_text(yaml.safe_dump(data))
    code, text = run("provision", "diff", str(inv), "--secrets", sec, "--target", str(target),
                     "--site", "zj-pbx")
    outputs.append(text)
    assert code == 0
    assert f"-password = {MASK}" in text and f"+password = {MASK}" in text
    for secret in [*secrets, "a-brand-new-secret"]:
        for text in outputs:
            assert secret not in text


def test_errors_and_json_never_carry_a_password(tmp_path: Path) -> None:
    code, text = run("db", "migrate", "--config", str(_config(tmp_path)))
    assert code == 9 and "hunter2" not in text and MASK in text, text
    state = LabState(root=str(tmp_path), netns={"sites": {"gw": {"ami": {
        "host": "127.0.0.1", "port": 5038, "username": "pbxctl", "secret": "s3cr3t-ami"}}}})
    state.save()
    code, text = run("lab", "status", "--json", environ={"PBXCTL_LAB_DIR": str(tmp_path)})
    assert "s3cr3t-ami" not in text
    assert json.loads(text)["netns"]["sites"]["gw"]["ami"]["secret"] == MASK
    assert stat.S_IMODE((tmp_path / "lab.json").stat().st_mode) == 0o600


def _config(tmp_path: Path) -> Path:
    (tmp_path / "secrets.yaml").write_text("database:\n  password: hunter2\n")
    (tmp_path / "secrets.yaml").chmod(0o600)
    cfg = tmp_path / "pbxctl.yaml"
    cfg.write_text("database:\n  dsn: 'host=127.0.0.1 port=1 dbname=x user=x "
                   "connect_timeout=1'\n")
    return cfg


def test_redaction_of_conninfo_urls_and_keys() -> None:
    assert redact_text("host=a password='p w' dbname=x") == f"host=a password={MASK} dbname=x"
    assert redact_text("postgresql://u:pw@h/db") == f"postgresql://u:{MASK}@h/db"
    assert redacted({"ami": {"secret": "x", "host": "h"}, "list": [{"password": "y"}]}) == \
        {"ami": {"secret": MASK, "host": "h"}, "list": [{"password": MASK}]}

"""A built wheel, installed (not editable) into a fresh venv away from the checkout, carries every
template, migration and data file: it renders the example province for both engines, and the
files equal what the checkout renders."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "zhejiang" / "province.yaml"


def _run(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_wheel_in_a_fresh_venv_renders_the_province_for_both_engines(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          str(tmp_path / "dist"), str(ROOT)], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("pbxctl-*.whl"))
    names = _run([sys.executable, "-m", "zipfile", "-l", str(wheel)], cwd=tmp_path)
    for needed in ("pbxctl/data/migrations/0001_init.sql", "pbxctl/lab/sipp/uas_agent.xml",
                   "dialplans/asterisk/extensions_gateway.conf.j2",
                   "dialplans/freeswitch/sofia.conf.xml.j2", "contrib/pbxctl.yaml",
                   "examples/zhejiang/province.yaml", "pbxctl/console/templates/inbox.html",
                   "pbxctl/console/static/console.js",
                   "pbxctl/console/locale/zh_CN/LC_MESSAGES/console.po"):
        assert needed in names, needed

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([*pip, "--python", str(py), "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)
    # Dependencies (psycopg, Jinja2, …) from this venv, *after* the fresh one's own packages;
    # this venv's pbxctl is an editable finder whose .pth is not processed there.
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = _run([str(py), "-c", "import pbxctl, provisioning.templates as t; "
                  "print(pbxctl.__file__); print(t.dialplans_dir())"], cwd=tmp_path)
    assert where.startswith(str(venv)) and str(ROOT) not in where, where

    for engine in ("asterisk", "freeswitch"):
        out_wheel, out_tree = tmp_path / f"w-{engine}", tmp_path / f"t-{engine}"
        secrets = tmp_path / "secrets.yaml"
        base = ["provision", "render", str(EXAMPLE), "--secrets", str(secrets),
                "--engine", engine, "--asterisk", "22"]
        _run([str(venv / "bin" / "pbxctl"), *base, "--out", str(out_wheel)], cwd=tmp_path)
        _run([sys.executable, "-m", "pbxctl", *base, "--out", str(out_tree)], cwd=ROOT)
        rendered = _tree(out_wheel)
        assert len(rendered) > 23 * 3, (engine, len(rendered))  # 23 sites, several files each
        assert rendered == _tree(out_tree), engine

"""The installed distribution: one import name (mmgym), the repository's agents/ as mmgym.agents,
the example configs as package data, and the mmgym command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_package_list_matches_the_folders():
    cfg = _setuptools()
    found = {".".join(("mmgym", *p.parent.relative_to(ROOT / "mmgym").parts)).rstrip(".")
             for p in (ROOT / "mmgym").rglob("__init__.py")}
    assert set(cfg["packages"]) == found | {"mmgym.agents", "mmgym.configs"}
    assert cfg["package-dir"] == {"mmgym.agents": "agents", "mmgym.configs": "configs"}


@pytest.mark.slow
def test_wheel_installs_mmgym_only_with_agents_and_configs_inside(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("mmgym-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"mmgym"}  # the generic name `agents` is not claimed
    assert "mmgym/agents/train.py" in names and "mmgym/agents/cli_evaluate.py" in names
    shipped = {Path(n).name for n in names if n.startswith("mmgym/configs/")}
    assert {p.name for p in (ROOT / "configs").glob("*.yaml")} <= shipped
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mmgym = mmgym.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_mmgym_command_dispatches(capsys):
    from mmgym.cli import COMMANDS, main

    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert all(c in usage for c in COMMANDS)
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["evaluate", "no_such_config", "--agents", "as"]) == 2
    assert "nor a shipped config" in capsys.readouterr().err

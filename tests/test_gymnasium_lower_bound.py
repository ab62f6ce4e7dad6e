"""The lower bound of the supported Gymnasium range (pyproject: ``gymnasium>=1.1``) is tested, not
assumed: the env and client tests run again in a virtual environment that shares this one's
packages but has the oldest supported Gymnasium (1.1.x) installed over them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared_lower_bound() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'"gymnasium>=([0-9.]+)', text)
    assert m, "pyproject.toml: no gymnasium lower bound"
    return m.group(1)


@pytest.mark.slow
def test_env_and_client_tests_pass_on_the_lowest_supported_gymnasium(tmp_path):
    low = _declared_lower_bound()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    spec = f"gymnasium=={low}.*" if low.count(".") == 1 else f"gymnasium=={low}"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", spec], capture_output=True, text=True,
                          timeout=600)
    if inst.returncode != 0:
        pytest.skip(f"cannot install {spec} here: {inst.stderr.strip().splitlines()[-1:]}")
    version = subprocess.run([str(py), "-c", "import gymnasium; print(gymnasium.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    assert version.startswith(low), version
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    run = subprocess.run([str(py), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          "tests/test_compat.py", "tests/test_envs.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, f"gymnasium {version}:\n{run.stdout[-4000:]}"
    assert sys.version_info >= (3, 10)

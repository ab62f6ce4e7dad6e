"""Shared test set-up: every test gets an empty disk cache of its own (tuned baselines keep simulated
searches on disk, mmgym/baselines/tuned.py), so no test reads another's or the user's results."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_mmgym_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MMGYM_CACHE_DIR", str(tmp_path_factory.mktemp("mmgym_cache")))

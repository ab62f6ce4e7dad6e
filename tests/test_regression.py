"""Same seed, same trajectories: the current code reproduces the recording of the pre-redesign
code (tests/regression_record.py, tests/data/regression_v1.npz from commit 62af6f2) exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.regression_record import record

FIXTURE = Path(__file__).parent / "data" / "regression_v1.npz"


@pytest.fixture(scope="module")
def recorded():
    return record()


def test_every_recorded_array_is_reproduced(recorded):
    stored = np.load(FIXTURE)
    assert set(recorded) == set(stored.files)
    mismatched = [k for k in stored.files
                  if recorded[k].shape != stored[k].shape
                  or not np.array_equal(recorded[k], stored[k], equal_nan=True)]
    assert not mismatched, f"{len(mismatched)} arrays differ, e.g. {mismatched[:5]}"

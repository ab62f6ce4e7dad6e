"""The book engine reproduces the book part of the regression fixture (tests/data/regression_v1.npz,
recorded with the pre-redesign engine mmgym.book.kernel) exactly: ``tests/regression_record.py``'s
``_book`` runs the new engine (mmgym.sim.book) when it exists; only its ``book_*`` keys are compared
here (the env keys are tests/test_regression.py's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.regression_record import _book, _book_module

FIXTURE = Path(__file__).parent / "data" / "regression_v1.npz"


def test_book_keys_reproduced_bit_for_bit():
    assert _book_module().__name__ == "mmgym.sim.book"
    out: dict[str, np.ndarray] = {}
    _book(out)
    stored = np.load(FIXTURE)
    expected = sorted(k for k in stored.files if k.startswith("book_"))
    assert expected and sorted(out) == expected
    mismatched = [k for k in expected
                  if out[k].shape != stored[k].shape or out[k].dtype != stored[k].dtype
                  or not np.array_equal(out[k], stored[k])]
    assert not mismatched, f"{len(mismatched)} of {len(expected)} arrays differ, e.g. {mismatched[:5]}"

"""Golden runs: restored outputs and records bit-identical to the reference commit.

The reference outputs in tests/golden/ were written by ``python -m
tests.golden.cases`` at the commit before the run pipeline was
restructured; any refactoring must leave them unchanged (see cases.py for
what a failure on another CPU model means).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden.cases import CASES, HERE, run_case, stable

GOLDEN = np.load(HERE / "golden.npz")
RECORDS = json.loads((HERE / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, registry):
    r = run_case(name, registry=registry)
    expected = GOLDEN[name]
    assert r.image.dtype == expected.dtype and r.image.shape == expected.shape
    assert np.array_equal(r.image, expected), f"{name}: restored pixels changed"
    assert stable(r.record) == RECORDS[name]

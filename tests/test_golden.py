"""Golden runs: restored outputs and records as at the reference commit, up to floating point.

The reference outputs in tests/golden/ were written by ``python -m
tests.golden.cases`` at the commit before the run pipeline was
restructured; any refactoring must leave them unchanged.  Unchanged means:
the record's structure, strings, integers (iterations, stopping points,
backtracks), booleans and the floats the run was given, exactly; the floats
it computed (losses, PSNRs, metrics) to a relative tolerance per kind; pixels
to an absolute one.  The tolerances cover what rounding on another CPU
(instruction set, thread count, BLAS) does to these fits, about 8-10 times
the largest deviation measured over every kernel choice reachable on the
reference machine, and stay well inside what a real change does (a 1% larger
learning rate, another EMA rate or seed fails); cases.py's docstring has the
measurements, and ``python -m tests.golden.cases --deviation`` prints this
machine's deviations next to them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden.cases import CASES, HERE, compare, pixel_deviation, pixel_tolerance, run_case, stable

GOLDEN = np.load(HERE / "golden.npz")
RECORDS = json.loads((HERE / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, registry):
    r = run_case(name, registry=registry)
    expected = GOLDEN[name]
    assert r.image.dtype == expected.dtype and r.image.shape == expected.shape
    moved, limit = pixel_deviation(r.image, expected), pixel_tolerance(expected.dtype)
    assert moved <= limit, f"{name}: restored pixels changed by up to {moved:g} (tolerance {limit:g})"
    differences = compare(stable(r.record), RECORDS[name])
    assert not differences, f"{name}: the record changed:\n" + "\n".join(differences)

"""The flat circuit is built once per design and floating lines, shared read-only."""
from __future__ import annotations

import numpy as np
import pytest

import circuitsim
from circuitsim import circuit as circuit_module
from circuitsim.circuit import CACHED_DESIGNS, make_drive


def _design(seed: int, n: int = 6) -> circuitsim.Crossbar:
    rng = np.random.default_rng(seed)
    return circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=2.0, r_col=2.0)


def test_second_call_reuses_the_circuit():
    xb = _design(0)
    first = make_drive(xb, np.ones(6)).circuit
    assert make_drive(xb, np.zeros((3, 6))).circuit is first
    floating = np.zeros(6, dtype=bool)
    floating[2] = True
    other = make_drive(xb, np.ones(6), floating_cols=floating).circuit
    assert other is not first, "different floating lines must not share a circuit"
    assert make_drive(xb, np.ones(6), floating_cols=floating.copy()).circuit is other


def test_different_designs_never_share():
    a, b = _design(1), _design(2)
    ca, cb = make_drive(a, np.ones(6)).circuit, make_drive(b, np.ones(6)).circuit
    assert ca is not cb and ca.xb is a and cb.xb is b
    # same values, another object: built for itself (Crossbar compares by identity)
    c = a.replace()
    assert make_drive(c, np.ones(6)).circuit.xb is c


def test_designs_dropped_from_the_cache_come_back_rebuilt():
    designs = [_design(10 + k) for k in range(CACHED_DESIGNS + 1)]
    first = make_drive(designs[0], np.ones(6)).circuit
    for xb in designs[1:]:
        make_drive(xb, np.ones(6))
    again = make_drive(designs[0], np.ones(6)).circuit
    assert again is not first and again.xb is designs[0]
    np.testing.assert_array_equal(again.res_ohm, first.res_ohm)


def test_shared_arrays_are_read_only_and_results_independent():
    xb = _design(3)
    circuit = make_drive(xb, np.ones(6)).circuit
    with pytest.raises(ValueError, match="read-only"):
        circuit.res_ohm[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        circuit.fixed[0] = 0
    v = np.linspace(0.1, 0.5, 6)
    r1 = circuitsim.simulate(xb, v, engine="numpy")
    assert r1.circuit is circuit
    expected = r1.column_currents.copy(), r1.cell_voltages.copy()
    for array in (r1.column_currents, r1.cell_voltages):
        array[...] = 0.0  # a caller may change its own result
    r2 = circuitsim.simulate(xb, v, engine="numpy")
    for got, want in zip((r2.column_currents, r2.cell_voltages), expected):
        err = np.max(np.abs(got - want))
        assert err == 0.0, f"second result differs by {err} after the first one was changed"


def test_byte_budget_keeps_only_the_newest(monkeypatch):
    monkeypatch.setattr(circuit_module, "CACHED_BYTES", 0)
    a, b = _design(20), _design(21)
    ca = make_drive(a, np.ones(6)).circuit
    assert make_drive(a, np.ones(6)).circuit is ca, "the newest circuit is kept whatever its size"
    make_drive(b, np.ones(6))
    assert make_drive(a, np.ones(6)).circuit is not ca, "over the byte budget, older circuits are dropped"

"""Engines against closed forms, against each other (real ngspice) and against badcrossbar."""
import badcrossbar
import numpy as np
import pytest
from conftest import CELL_KINDS, random_crossbar

import circuitsim
from circuitsim.circuit import build_circuit
from circuitsim.engines import check_passive
from circuitsim.errors import UnphysicalValueWarning
from circuitsim.solver.dc import transfer_matrix
from circuitsim.spice.worker import SpiceError


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def assert_close(got, want, tol: float, what: str) -> None:
    """Largest difference relative to the largest reference value, at most a third of tol (other
    CPUs round differently), reported either way."""
    error = _rel(np.asarray(got, dtype=float), np.asarray(want, dtype=float))
    assert error <= tol / 3, f"{what}: relative error {error:.3g}, tolerance {tol:g} (margin: <= tol/3)"


@pytest.mark.parametrize("engine", ["numpy", "spice"])
def test_one_cell_closed_form(engine):
    xb = circuitsim.Crossbar(conductance=[[1e-4]], r_row=10.0, r_col=20.0, r_driver=5.0, r_sense=15.0)
    res = circuitsim.simulate(xb, [0.3], engine=engine)
    expected = 0.3 / (1e4 + 10 + 20 + 5 + 15)
    assert_close(res.column_currents, [expected], 1e-9, f"{engine} column current")
    assert_close(res.row_currents, [expected], 1e-9, f"{engine} row current")
    assert_close(res.power, 0.3 * expected, 1e-9, f"{engine} power")
    assert_close(res.cell_voltages, [[expected * 1e4]], 1e-9, f"{engine} cell voltage")


@pytest.mark.parametrize("engine", ["numpy", "spice"])
def test_single_row_closed_form(engine):
    """One row of three cells, no column resistance: a ladder solved by hand."""
    g = np.array([[1e-3, 2e-3, 5e-4]])
    r = 50.0
    xb = circuitsim.Crossbar(conductance=g, r_row=r)
    res = circuitsim.simulate(xb, [1.0], engine=engine)
    # ladder from the far end: R3, then (R3 || cell2) + r ...
    z = 1 / g[0, 2]
    z = r + z
    z = r + 1 / (g[0, 1] + 1 / z)
    z = r + 1 / (g[0, 0] + 1 / z)
    i_total = 1.0 / z
    assert_close(res.row_currents, [i_total], 1e-9, f"{engine} row current")
    assert_close(res.column_currents.sum(), i_total, 1e-9, f"{engine} total column current")
    v1 = 1.0 - r * i_total
    assert_close(res.column_currents[0], g[0, 0] * v1, 1e-9, f"{engine} first column current")


@pytest.mark.parametrize("engine", ["numpy", "spice"])
def test_zero_wire_resistance_is_ideal(engine, rng):
    g = rng.uniform(1e-6, 1e-4, (5, 7))
    v = rng.uniform(-1, 1, (3, 5))
    res = circuitsim.simulate(circuitsim.Crossbar(conductance=g), v, engine=engine)
    assert_close(res.column_currents, v @ g, 1e-12, f"{engine} ideal array")
    assert res.column_currents.shape == (3, 7) and res.cell_currents.shape == (3, 5, 7)


@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_spice_and_numpy_agree(kind, rng):
    for rows, cols in [(3, 5), (8, 6)]:
        xb = random_crossbar(rng, rows, cols, kind)
        v = rng.uniform(-0.4, 1.0, (3, rows))
        a = circuitsim.simulate(xb, v, engine="numpy")
        b = circuitsim.simulate(xb, v, engine="spice")
        assert b.provenance["ngspice_version"].isdigit()  # setup.sh and `doctor` see to it being 46
        for name in ("column_currents", "row_currents", "cell_currents", "node_voltages", "power"):
            assert_close(getattr(a, name), getattr(b, name), 1e-6, f"{kind} {rows}x{cols} {name}, numpy vs ngspice")


@pytest.mark.parametrize("kind", ["1S1R", "1T1R"])
def test_spice_and_numpy_agree_with_floating_lines_and_gates(kind, rng):
    xb = random_crossbar(rng, 6, 5, kind)
    v = rng.uniform(0.0, 1.0, 6)
    extra = {"v_gates": np.r_[1.8, 0.0, 1.8, 1.2, 0.0, 1.8]} if kind == "1T1R" else {}
    kw = dict(v_cols=np.full(5, 0.2), floating_rows=np.r_[False, True, False, False, True, False],
              floating_cols=np.r_[False, False, True, False, False], **extra)
    a = circuitsim.simulate(xb, v, engine="numpy", **kw)
    b = circuitsim.simulate(xb, v, engine="spice", **kw)
    assert_close(a.column_currents, b.column_currents, 1e-6, f"{kind} column currents, numpy vs ngspice")
    assert a.column_currents[2] == 0 and a.row_currents[1] == 0


def test_numpy_matches_badcrossbar(rng):
    for rows, cols, r in [(4, 4, 1.0), (10, 7, 3.3), (16, 16, 0.5)]:
        g = rng.uniform(1e-6, 1e-4, (rows, cols))
        v = rng.uniform(-1, 1, (5, rows))
        ours = circuitsim.simulate(circuitsim.Crossbar(conductance=g, r_row=r, r_col=r), v, engine="numpy")
        theirs = badcrossbar.compute(v.T, 1 / g, r_i=r, node_voltages=False, all_currents=False)
        assert_close(ours.column_currents, theirs.currents.output, 1e-9, f"{rows}x{cols}, numpy vs badcrossbar")


def test_transfer_matrix_reproduces_solution(rng):
    xb = random_crossbar(rng, 9, 7)
    v = rng.uniform(0, 1, (4, 9))
    res = circuitsim.simulate(xb, v, engine="numpy")
    circuit = build_circuit(xb, np.zeros(9, bool), np.zeros(7, bool))
    t = transfer_matrix(circuit)
    volts = circuit.fixed_voltages(v, np.zeros((4, 7)), np.zeros((4, 9)))
    assert_close(volts @ t.T, res.node_voltages, 1e-12, "node voltages from the transfer matrix")


def test_wire_resistance_lowers_currents(rng):
    g = rng.uniform(1e-5, 1e-4, (16, 16))
    v = np.full(16, 0.5)
    ideal = circuitsim.simulate(circuitsim.Crossbar(conductance=g), v, engine="numpy").column_currents
    wired = circuitsim.simulate(circuitsim.Crossbar(conductance=g, r_row=5, r_col=5), v, engine="numpy")
    assert np.all(wired.column_currents < ideal)
    assert np.all(wired.cell_voltages < 0.5) and np.all(wired.cell_voltages > 0.3)


def test_netlist_is_readable_and_runs_what_spice_runs(rng):
    xb = random_crossbar(rng, 4, 8, "1S1R")
    text = circuitsim.netlist(xb, np.full(4, 0.5))
    assert ".options klu" in text and ".op" in text and text.rstrip().endswith(".end")
    assert ".include" in text and "selectors.lib" in text
    for node in ("r3c7", "b3c7", "m3c7", "in3", "out7"):
        assert f" {node} " in text or f" {node}\n" in text
    res = circuitsim.simulate(xb, np.full(4, 0.5), engine="spice")
    assert res.provenance["netlist_sha256"]
    assert res.node_voltage("in3") == pytest.approx(0.5)


def test_result_node_lookup_names_missing_nodes():
    res = circuitsim.simulate(circuitsim.Crossbar(conductance=[[1e-4]]), [0.1], engine="numpy")
    with pytest.raises(KeyError, match="r5c5"):
        res.node_voltage("r5c5")


def test_a_node_voltage_outside_the_sources_range_is_refused():
    """What ngspice 39's transient-op fallback can return (1e12 V where gmin carries 1 A)."""
    fixed = np.array([[0.3, 0.1, 0.0], [-0.2, 0.0, 0.0]])
    check_passive(np.array([[0.3, 0.2, 0.0, 1e-9], [-0.2, -0.1, 0.0, 0.0]]), fixed, "fine")
    with pytest.raises(SpiceError, match=r"design X: ngspice returned 1e\+12 V .* input vector 1, outside .*-0.2, 0\]"):
        check_passive(np.array([[0.3, 0.2, 0.0, 0.0], [-0.2, 1e12, 0.0, 0.0]]), fixed, "design X")


@pytest.mark.parametrize("r_wire", [2.0, 0.0])  # 0 Ω: merged nodes, no row or column wire unknowns
def test_nested_dissection_order_solves_exactly_with_less_fill(r_wire, rng):
    from scipy.sparse.linalg import splu

    from circuitsim.solver.dc import _full_linear_laplacian, free_nodes
    from circuitsim.solver.ordering import OrderedLU, elimination_order

    xb = random_crossbar(rng, 64, 64, r_row=r_wire, r_col=r_wire)
    circuit = build_circuit(xb, np.zeros(64, bool), np.zeros(64, bool))
    free = free_nodes(circuit)
    order = elimination_order(circuit, free)
    assert np.array_equal(np.sort(order), np.arange(len(free)))
    matrix = _full_linear_laplacian(circuit)[free][:, free]
    rhs = rng.normal(size=(len(free), 3))
    lu = OrderedLU(matrix, order)
    assert_close(matrix @ lu.solve(rhs), rhs, 1e-9, "residual of the nested-dissection solve")
    if r_wire:
        mmd = splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A")
        assert lu.nnz < 0.8 * (mmd.L.nnz + mmd.U.nnz)


def test_steep_selectors_at_high_voltage_converge_to_ngspice(rng):
    """A 6.5 mV sinh selector with mS cells at 3-10 V: plain Newton cycled around the selector's
    knee (ConvergenceError at 10 V, even with source stepping) and the inner-node solve crawled
    past it; the line search on the co-content energy and rtsafe converge where ngspice does.
    At 10 V ngspice's own KCL residual is 6e-7 A on 14 mA columns: hence 2e-6, not 1e-6."""
    from circuitsim.solver.dc import leaving_currents

    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-4, 3e-3, (6, 7)), r_row=19.0, r_col=19.0, r_driver=10.0,
                             r_sense=10.0, selector=circuitsim.devices.SinhSelector(i0=1.7e-8, v0=0.0065))
    for volts in (3.0, 10.0):
        v = rng.uniform(-volts, volts, (2, 6))
        a = circuitsim.simulate(xb, v, engine="numpy")
        b = circuitsim.simulate(xb, v, engine="spice")
        assert_close(a.column_currents, b.column_currents, 2e-6, f"{volts} V, numpy vs ngspice")
        free = np.setdiff1d(np.arange(a.circuit.n_nodes), a.circuit.fixed)
        kcl = np.abs(leaving_currents(a.circuit, a.node_voltages, None)[:, free]).max()
        assert kcl < 1e-8 * np.abs(a.column_currents).max() / 3, f"{volts} V: KCL residual {kcl:.3g} A"


@pytest.mark.parametrize("kind, r_wire", [("1R", 0.0), ("1R", 2.0), ("1S1R", 2.0)])
def test_a_floating_line_of_open_cells_is_left_out(kind, r_wire, rng):
    """Column 1 floats and all its cells are open: its nodes have no DC path to any source.
    The numpy engine called the matrix singular, the spice engine raised KeyError 'b0c1'; now
    both leave the group out: its voltages are NaN, its currents 0, the rest is solved."""
    xb = random_crossbar(rng, 3, 4, kind, r_row=r_wire, r_col=r_wire)
    xb = xb.replace(conductance=np.where(np.arange(4) == 1, 0.0, xb.conductance))
    floating = np.arange(4) == 1
    v = rng.uniform(0.2, 1.0, (2, 3))
    a, b = (circuitsim.simulate(xb, v, engine=e, floating_cols=floating) for e in ("numpy", "spice"))
    for res in (a, b):
        assert np.all(res.column_currents[:, 1] == 0) and np.all(res.cell_currents[:, :, 1] == 0)
        assert np.all(np.isnan(res.cell_voltages[:, :, 1])) and np.all(np.isfinite(res.cell_voltages[:, :, [0, 2, 3]]))
        assert np.isnan(res.node_voltage("b0c1")).all() and np.isfinite(res.node_voltage("b0c0")).all()
    assert_close(a.column_currents, b.column_currents, 1e-6, f"{kind}, numpy vs ngspice")


@pytest.mark.parametrize("g_cell", [1e15, 1e20, 1e300])
def test_near_short_cells_give_the_exact_currents(g_cell):
    """2x2, 2 Ω wires, cells far more conductive than the wires: the numpy engine gave 0.1414 A for
    0.125 A, -5e19 A or NaN. The cells are merged as near-shorts and their currents come from KCL;
    the limit G -> inf is the 2 Ω network solved by hand (node voltages 2/3, 1/2, 1/2, 1/3 V)."""
    with pytest.warns(UnphysicalValueWarning):
        xb = circuitsim.Crossbar(conductance=np.full((2, 2), g_cell), r_row=2.0, r_col=2.0)
    res = circuitsim.simulate(xb, [1.0, 1.0], engine="numpy")
    for got, exact in [(res.column_currents, [1 / 4, 1 / 6]), (res.row_currents, [1 / 6, 1 / 4]),
                       (res.cell_currents, [[1 / 12, 1 / 12], [1 / 6, 1 / 12]])]:
        assert_close(got, exact, 1e-9, f"{g_cell:g} S cells")


def test_near_short_merging_agrees_with_ngspice_where_both_resolve(rng):
    """Cells 1e9 times the wire conductance at some places, ordinary elsewhere: merged near-shorts
    (error <= 1e-8 by construction) and ngspice agree."""
    g = rng.uniform(1e-6, 1e-4, (4, 5))
    g[1, 2] = g[3, 0] = 1e9
    with pytest.warns(UnphysicalValueWarning):
        xb = circuitsim.Crossbar(conductance=g, r_row=2.0, r_col=2.0, r_driver=1.0)
    v = rng.uniform(0.2, 1.0, (2, 4))
    a, b = (circuitsim.simulate(xb, v, engine=e) for e in ("numpy", "spice"))
    assert_close(a.column_currents, b.column_currents, 1e-6, "column currents, numpy vs ngspice")
    assert_close(a.cell_currents, b.cell_currents, 1e-6, "cell currents, numpy vs ngspice")


def test_a_large_linear_batch_keeps_only_what_is_asked_for(rng):
    """A batch: source currents through the sources' conductance matrix (from the factorization
    with the lines' end nodes last), node arrays computed on first use, equal to solving each
    vector (1e-9: S's diagonal is a difference, which costs row currents a few digits)."""
    xb = random_crossbar(rng, 6, 5)
    v = rng.uniform(-1, 1, (40, 6))
    lazy = circuitsim.simulate(xb, v, engine="numpy")
    assert lazy.provenance["node_results"] == "on demand" and lazy._node_voltages is None
    direct = [circuitsim.simulate(xb, v[k], engine="numpy") for k in (0, 39)]
    spice = circuitsim.simulate(xb, v[39], engine="spice")
    assert_close(lazy.column_currents[39], spice.column_currents, 1e-6, "column currents by S vs ngspice")
    for k, one in zip((0, 39), direct):
        for name in ("column_currents", "row_currents", "power", "cell_currents", "cell_voltages", "node_voltages"):
            assert_close(getattr(lazy, name)[k], getattr(one, name), 1e-9, f"{name} of vector {k}")


def test_both_factorizations_give_the_same_solves_and_schur_complements(rng):
    """CHOLMOD (where scikit-sparse is installed) and SuperLU (the fallback) are interchangeable:
    same solutions, same Schur complement onto the last unknowns."""
    from circuitsim.solver.dc import free_nodes
    from circuitsim.solver.linear import LinearSystem
    from circuitsim.solver.ordering import OrderedCholesky, OrderedLU

    xb = random_crossbar(rng, 12, 9)
    circuit = build_circuit(xb, np.zeros(12, bool), np.zeros(9, bool))
    system = LinearSystem(circuit, free_nodes(circuit), ports_last=True)
    order, k = system.factor.order, len(system.ports)
    rhs = rng.normal(size=(system.matrix.shape[0], 3))
    lu, chol = OrderedLU(system.matrix, order, symmetric=True), OrderedCholesky(system.matrix, order)
    assert_close(chol.solve(rhs), lu.solve(rhs), 1e-10, "CHOLMOD vs SuperLU solve")
    assert_close(chol.schur(k), lu.schur(k), 1e-10, "CHOLMOD vs SuperLU Schur complement")

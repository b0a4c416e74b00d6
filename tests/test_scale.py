"""The numpy engine's large-scale machinery: batched Newton-Krylov, GMRES, chunked batches that keep
only the currents, supernodal factorizations. Every answer against ngspice or an exact solve."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import CELL_KINDS, random_crossbar
from test_engines import assert_close

import circuitsim
from circuitsim import engines
from circuitsim.circuit import make_drive
from circuitsim.devices import SinhSelector
from circuitsim.errors import ConvergenceError
from circuitsim.solver import dc
from circuitsim.solver.ordering import OrderedCholesky


def test_gmres_solves_each_row_with_its_own_operator(rng):
    """Batched right-preconditioned GMRES: column k of the answer solves A_k x = b_k (nonsymmetric A_k,
    one shared preconditioner P solved exactly, each A_k given as its difference from P), to the
    tolerance asked for."""
    n, batch = 40, 5
    base = sp.random(n, n, density=0.1, random_state=1) + sp.eye(n) * 4.0
    scales = rng.uniform(0.5, 2.0, (batch, n))
    dense = [base.toarray() * scales[k][None, :] for k in range(batch)]  # A_k = base · diag(scale_k)
    rhs = rng.normal(size=(batch, n))
    inverse, corrections = np.linalg.inv(base.toarray()), [a - base.toarray() for a in dense]
    x, used, residual = dc._gmres(lambda y: np.stack([corrections[k] @ y[:, k] for k in range(batch)], axis=1),
                                lambda y: inverse @ y, rhs.T.copy(), 1e-10, 30)
    exact = np.stack([np.linalg.solve(dense[k], rhs[k]) for k in range(batch)], axis=1)
    assert np.all(residual <= 1e-10) and used <= 30
    assert_close(x, exact, 1e-8, "GMRES vs a dense solve per row")


@pytest.mark.parametrize("kind", ["1S1R", "1T1R"])
def test_a_diverse_nonlinear_batch_agrees_with_ngspice(kind, rng):
    """Vectors from near 0 V to past the selector's knee, by the default path (cell currents) and by
    the node-voltage Newton-Krylov, where they share one preconditioner but each still gets its own
    Jacobian through GMRES: each agrees with ngspice alone."""
    xb = random_crossbar(rng, 12, 10, kind)
    v = np.stack([np.full(12, 0.05), rng.uniform(-1.0, 1.0, 12), np.full(12, 1.2), rng.uniform(0.0, 0.3, 12)])
    ours = circuitsim.simulate(xb, v, engine="numpy")
    theirs = circuitsim.simulate(xb, v, engine="spice")
    for name in ("column_currents", "row_currents", "cell_currents", "node_voltages"):
        assert_close(getattr(ours, name), getattr(theirs, name), 1e-6, f"{kind} {name}, numpy vs ngspice")
    drive = make_drive(xb, v)
    general = dc.operating_point(drive.circuit, drive.fixed_volts, dc.NewtonOptions(by_currents=False))
    assert_close(general.cell_currents.reshape(theirs.cell_currents.shape), theirs.cell_currents, 1e-6,
                 f"{kind} cell currents, node-voltage Newton-Krylov vs ngspice")


@pytest.mark.parametrize("kind", ["1S1R", "1T1R"])
def test_a_nonlinear_batch_too_large_to_keep_keeps_only_its_currents(kind, rng, monkeypatch):
    """Past EAGER_NODE_VALUES a nonlinear batch is solved chunk by chunk keeping only the source
    currents; node arrays are solved again on first use and equal the eager ones."""
    xb = random_crossbar(rng, 5, 4, kind)
    v = rng.uniform(0.0, 1.0, (70, 5))  # more vectors than one Newton chunk
    eager = circuitsim.simulate(xb, v, engine="numpy")
    monkeypatch.setattr(engines, "EAGER_NODE_VALUES", 100)
    lazy = circuitsim.simulate(xb, v, engine="numpy")
    assert lazy.provenance["node_results"] == "on demand" and lazy._node_voltages is None
    assert "node_results" not in eager.provenance
    spice = circuitsim.simulate(xb, v[69], engine="spice")
    assert_close(lazy.column_currents[69], spice.column_currents, 1e-6, f"{kind} last vector vs ngspice")
    for name in ("column_currents", "row_currents", "power", "cell_currents", "node_voltages"):
        assert_close(getattr(lazy, name), getattr(eager, name), 1e-12, f"{kind} {name}, lazy vs eager")


def test_newton_that_cannot_converge_raises(rng):
    """With too few iterations allowed, the solver raises instead of returning its last iterate."""
    xb = random_crossbar(rng, 6, 6, "1S1R", selector=SinhSelector(i0=1e-8, v0=0.01))
    drive = make_drive(xb, np.full(6, 1.5))
    starved = dc.NewtonOptions(shared_iter=1, max_iter=1, source_steps=1)
    with pytest.raises(ConvergenceError, match="did not converge"):
        dc.solve(drive.circuit, drive.fixed_volts, starved)


def test_supernodal_simplicial_and_compiled_cholesky_solve_alike(rng):
    """Large systems are factorized supernodally (BLAS blocks); small ones and Schur complements use
    the simplicial factorization, the nonlinear solver's preconditioners with compiled substitutions
    (solver/triangular.py), in the elimination order or another: all give the same solves."""
    xb = random_crossbar(rng, 20, 20)
    circuit = make_drive(xb, np.ones(20)).circuit
    system = dc._ReducedSystem(circuit, dc.free_nodes(circuit), dc.NewtonOptions())  # wires only: SPD
    matrix = system.lap_ff + sp.eye(len(system.free)) * 1e-4
    rhs = rng.normal(size=(len(system.free), 3))
    exact = np.linalg.solve(matrix.toarray(), rhs)
    for order in (system.order, rng.permutation(len(system.free))):
        solvers = {"simplicial": OrderedCholesky(matrix, order), "supernodal": OrderedCholesky(matrix, order, True),
                   "compiled": OrderedCholesky(matrix, order, compiled=True)}
        assert solvers["compiled"]._lower is not None
        for name, solver in solvers.items():
            assert_close(solver.solve(rhs), exact, 1e-10, f"{name} Cholesky vs dense")


@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_one_vector_and_a_batch_give_the_same_answer(kind, rng):
    """A vector solved alone and inside a batch (shared preconditioner, other vectors beside it)."""
    xb = random_crossbar(rng, 9, 7, kind)
    v = rng.uniform(-0.5, 1.0, (6, 9))
    batch = circuitsim.simulate(xb, v, engine="numpy")
    alone = circuitsim.simulate(xb, v[3], engine="numpy")
    assert_close(batch.column_currents[3], alone.column_currents, 1e-8, f"{kind} vector 3 in a batch vs alone")

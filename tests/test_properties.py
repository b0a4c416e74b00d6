"""Property-based tests: random designs, drives and TOML documents fed to simulate, netlist and
the command line. Accepted: a correct answer, checked against an independent computation
(Kirchhoff's current law at every node of the result, from the design's own elements; ngspice
agreeing with numpy), or a clear one-line error of an expected type. Text that could reach a
deck as a command (.control, shell, newlines, '*' comments) must always be refused.

The default run is derandomized and small (seconds); the `slow` variants draw 20x more examples.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import circuitsim
from circuitsim.cli import main as cli_main
from circuitsim.config import crossbar_from_dict, load_design
from circuitsim.devices import Diode, NmosAccess, SinhSelector
from circuitsim.devices.laws import GMIN_S
from circuitsim.errors import CircuitsimError, UnphysicalValueWarning
from circuitsim.validate import PHYSICAL_RANGES, spice_name

EXAMPLES = 60
EPS = np.finfo(float).eps
NEWTON_VTOL_V = 1e-9  # the numpy engine's Newton stops once no node moves by more than this (solver.dc)...
NEWTON_RELTOL_KCL = 1e-13  # ...or once KCL holds to this share of (largest node conductance x drive)
SPICE_FLOOR_A = 1e-9  # below a full scale of 1 nA, spice and numpy are compared at 1e-15 A
FULL_SCALE_RTOL = 1e-6  # a correct answer: every KCL residual below this share of the largest current


def run_property(test, examples: int, slow: bool) -> None:
    """Run a hypothesis-wrapped test with `examples` examples (derandomized unless slow)."""
    settings(max_examples=examples, deadline=None, database=None, derandomize=not slow,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])(test)()


def sizes(name: str):
    return pytest.mark.parametrize(name, [pytest.param(False, id="default"),
                                          pytest.param(True, id="slow", marks=pytest.mark.slow)])


# ---- strategies ------------------------------------------------------------------------

NASTY_CONDUCTANCES = [1e-15, 3e-13, 1.0, 50.0, 1e3]  # beyond HRS, µS typed as S
REFUSED_NUMBERS = [math.nan, math.inf, -math.inf, -1e-4, "1e-4", True, 1 + 0j, None]
INJECTIONS = [".control", "shell rm -rf /", "x\n.control\nshell ls\n.endc", "* comment", "1e-8\n.end",
              "a b", "i0;shell", "v0 .include /etc/passwd", "\r.control"]


def log_floats(low_exp: float, high_exp: float):
    return st.floats(low_exp, high_exp).map(lambda e: 10.0**e)


conductance_values = st.one_of(st.just(0.0), log_floats(-9, -2), st.sampled_from(NASTY_CONDUCTANCES))
wire_values = st.one_of(st.just(0.0), log_floats(-3, 4))


@st.composite
def per_segment(draw, values, shape):
    """A scalar or a full per-segment array."""
    if draw(st.booleans()):
        return draw(values)
    return np.array(draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)))).reshape(shape)


@st.composite
def designs(draw, max_side: int = 5):
    """Crossbar keyword arguments (possibly with one refused value) and a drive."""
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    g = np.array(draw(st.lists(conductance_values, min_size=rows * cols, max_size=rows * cols)),
                 dtype=object).reshape(rows, cols)
    kwargs = {"conductance": g,
              "r_row": draw(per_segment(wire_values, (rows, cols))),
              "r_col": draw(per_segment(wire_values, (rows, cols))),
              "r_driver": draw(st.one_of(st.just(0.0), log_floats(-1, 3))),
              "r_sense": draw(st.one_of(st.just(0.0), log_floats(-1, 3)))}
    cell = draw(st.sampled_from(["1R", "1S1R", "1D1R", "1T1R"]))
    if cell == "1S1R":
        kwargs["selector"] = SinhSelector(i0=draw(log_floats(-9, -5)), v0=draw(st.floats(0.03, 0.3)))
    elif cell == "1D1R":
        kwargs["selector"] = Diode(bipolar=True)
    elif cell == "1T1R":
        kwargs["transistor"] = NmosAccess(w=draw(log_floats(-7, -5)))
    refused = None
    if draw(st.integers(0, 4)) == 0:  # one value that must be refused, somewhere
        refused = draw(st.sampled_from(["conductance", "r_row", "r_col", "r_driver", "r_sense"]))
        bad = draw(st.sampled_from(REFUSED_NUMBERS))
        if refused == "conductance":
            g[draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))] = bad
        else:
            kwargs[refused] = bad
    kwargs["conductance"] = g.tolist()
    batch = draw(st.integers(1, 3))
    volts = st.floats(-1.0, 1.0, allow_subnormal=True)
    v_rows = draw(st.lists(volts, min_size=batch * rows, max_size=batch * rows))
    drive = {"v_rows": np.array(v_rows).reshape(batch, rows)}
    if draw(st.booleans()):
        drive["v_cols"] = np.array(draw(st.lists(volts, min_size=cols, max_size=cols)))
    if cell == "1T1R" and draw(st.booleans()):
        drive["v_gates"] = np.array(draw(st.lists(st.sampled_from([0.0, 1.2, 1.8]), min_size=rows, max_size=rows)))
    if draw(st.integers(0, 2)) == 0:
        drive["floating_rows"] = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    if draw(st.integers(0, 2)) == 0:
        drive["floating_cols"] = np.array(draw(st.lists(st.booleans(), min_size=cols, max_size=cols)))
    return kwargs, drive, refused


def unphysical(kwargs: dict) -> bool:
    """Whether any value lies outside PHYSICAL_RANGES (what UnphysicalValueWarning must flag)."""
    def outside(value, unit):
        low, high = PHYSICAL_RANGES[unit]
        mag = np.abs(np.asarray(value, dtype=float))
        mag = mag[mag > 0]
        return bool(mag.size and (mag.max() > high or mag.min() < low))

    return outside(kwargs["conductance"], "S") or any(outside(kwargs[k], "Ω")
                                                      for k in ("r_row", "r_col", "r_driver", "r_sense"))


def build(kwargs: dict) -> circuitsim.Crossbar:
    """The crossbar; UnphysicalValueWarning must come exactly when a value is unphysical."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=UnphysicalValueWarning)
        xb = circuitsim.Crossbar(**kwargs)
    warned = any(issubclass(w.category, UnphysicalValueWarning) for w in caught)
    assert warned == unphysical(kwargs), [str(w.message) for w in caught]
    return xb


def assert_clear_error(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, repr(message)


# ---- the independent check: KCL from the design's own elements --------------------------

class _Groups:
    """Union-find of node names joined by zero-ohm wires (merged into one node)."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def elements(xb: circuitsim.Crossbar, floating_rows, floating_cols):
    """(kind, node a, node b, value) of every element, in unmerged node names (DESIGN.md wiring)."""
    rows, cols = xb.shape
    out = []
    for i in range(rows):
        if not floating_rows[i]:
            out.append(("R", f"in{i}", f"r{i}c0", xb.r_driver[i] + xb.r_row[i, 0]))
        out += [("R", f"r{i}c{j - 1}", f"r{i}c{j}", xb.r_row[i, j]) for j in range(1, cols)]
    for j in range(cols):
        out += [("R", f"b{i}c{j}", f"b{i + 1}c{j}", xb.r_col[i, j]) for i in range(rows - 1)]
        if not floating_cols[j]:
            out.append(("R", f"b{rows - 1}c{j}", f"out{j}", xb.r_col[rows - 1, j] + xb.r_sense[j]))
    inner = xb.selector is not None or xb.transistor is not None
    for i in range(rows):
        for j in range(cols):
            lo = f"m{i}c{j}" if inner else f"b{i}c{j}"
            if xb.conductance[i, j] > 0:
                out.append(("G", f"r{i}c{j}", lo, xb.conductance[i, j]))
            if xb.selector is not None:
                out.append(("S", lo, f"b{i}c{j}", None))
            if xb.transistor is not None:
                out.append(("T", lo, f"b{i}c{j}", i))
    return out


def check_kcl(xb: circuitsim.Crossbar, drive: dict, res) -> None:
    """The result obeys KCL at every node, holds the sources at their drive, and reports the
    currents that flow into the sense nodes and out of the drivers."""
    rows, cols = xb.shape
    fr = drive.get("floating_rows", np.zeros(rows, bool))
    fc = drive.get("floating_cols", np.zeros(cols, bool))
    els = elements(xb, fr, fc)
    groups = _Groups()
    for kind, a, b, value in els:
        groups.find(a), groups.find(b)
        if kind == "R" and value == 0:
            groups.join(a, b)
    index = {name: k for k, name in enumerate(res.node_names)}
    present: dict[str, int] = {}
    for name in groups.parent:
        if name in index:
            root = groups.find(name)
            assert root not in present, f"two solved nodes {name} in one zero-ohm group"
            present[root] = index[name]
    v_rows = np.atleast_2d(drive["v_rows"])
    v_cols = np.broadcast_to(drive.get("v_cols", np.zeros(cols)), (len(v_rows), cols))
    v_gates = drive.get("v_gates", np.full(rows, xb.transistor.v_gate_on if xb.transistor else 0.0))
    volts = np.atleast_2d(res.node_voltages)
    # nonlinear cells: Newton's stopping tolerances
    newton_v = NEWTON_VTOL_V if xb.selector is not None or xb.transistor is not None else 0.0
    col_i, row_i = np.atleast_2d(res.column_currents), np.atleast_2d(res.row_currents)
    for k in range(len(v_rows)):
        def v(name):
            return volts[k, present[groups.find(name)]]

        leaving: dict[str, float] = {}
        rounding: dict[str, float] = {}  # what rounding the node voltages alone can leave at a node
        node_g: dict[str, float] = {}  # sum of the slopes of the elements at a node [S]
        throughput = 0.0
        for kind, a, b, value in els:
            if groups.find(a) == groups.find(b):
                continue
            va, vb = v(a), v(b)
            if np.isnan(va) or np.isnan(vb):  # a node group with no DC path to a source: no voltage
                assert np.isnan(va) and np.isnan(vb), f"{a} or {b} has no voltage but a path to a source"
                continue
            if kind == "R":
                i, slope = (va - vb) / value, 1 / value
            elif kind == "G":
                i, slope = value * (va - vb), value
            elif kind == "S":
                i, slope = (float(x) for x in xb.selector.current(np.array(va - vb)))
            else:
                i, d_a, d_b = (float(x) for x in xb.transistor.drain_current(np.array(va), np.array(v_gates[value]),
                                                                             np.array(vb)))
                slope = abs(d_a) + abs(d_b)
            for node, sign in ((groups.find(a), 1.0), (groups.find(b), -1.0)):
                leaving[node] = leaving.get(node, 0.0) + sign * i
                rounding[node] = rounding.get(node, 0.0) + (64 * EPS * (abs(va) + abs(vb) + abs(va - vb))
                                                             + 2 * newton_v) * slope
                node_g[node] = node_g.get(node, 0.0) + slope
            throughput = max(throughput, abs(i))
        # ...or once every residual is below NEWTON_RELTOL_KCL x largest node conductance x drive
        newton_kcl = (NEWTON_RELTOL_KCL * max(node_g.values(), default=0.0) * max(1.0, np.abs(v_rows[k]).max())
                      if newton_v else 0.0)

        def tol(node):
            return FULL_SCALE_RTOL * throughput + rounding.get(node, 0.0) + newton_kcl + 1e-21

        sources = {}
        for i in np.flatnonzero(~fr):
            sources[groups.find(f"in{i}")] = ("row", i)
            assert abs(v(f"in{i}") - v_rows[k, i]) <= 1e-12, "a driver is not at its voltage"
        for j in np.flatnonzero(~fc):
            sources[groups.find(f"out{j}")] = ("col", j)
            assert abs(v(f"out{j}") - v_cols[k, j]) <= 1e-12, "a sense node is not at its voltage"
        for node, total in leaving.items():
            if node not in sources:
                assert abs(total) <= tol(node), f"KCL residual {total:.3e} A at {node} (scale {throughput:.3e} A)"
        for node, (kind, line) in sources.items():
            expected = leaving.get(node, 0.0)
            got = row_i[k, line] if kind == "row" else -col_i[k, line]
            assert abs(got - expected) <= tol(node), f"{kind} {line}: {got:.6e} A reported, {expected:.6e} A at it"
        assert np.all(col_i[k, fc] == 0), "a floating column reports a current"


# ---- properties --------------------------------------------------------------------------

def _simulate_or_clear_error(kwargs, drive, refused):
    """simulate() with the numpy engine: KCL holds, or the error is clear and expected."""
    if refused is not None:
        with pytest.raises((ValueError, TypeError), match=refused) as info:
            build(kwargs)
        assert_clear_error(info.value)
        return None
    xb = build(kwargs)
    try:
        res = circuitsim.simulate(xb, engine="numpy", **drive)
    except (ValueError, CircuitsimError) as exc:
        assert_clear_error(exc)
        return None
    check_kcl(xb, drive, res)
    return xb


@sizes("slow")
def test_simulate_gives_a_kcl_solution_or_a_clear_error(slow):
    @given(designs())
    def body(case):
        kwargs, drive, refused = case
        _simulate_or_clear_error(kwargs, drive, refused)

    run_property(body, EXAMPLES * (20 if slow else 1), slow)


def test_floating_open_column():
    """Fixed by the solver (issue 12): a group with no DC path is left out, its currents 0."""
    xb = circuitsim.Crossbar(conductance=[[1e-4, 0.0], [1e-4, 0.0]], r_row=1.0, r_col=1.0)
    res = circuitsim.simulate(xb, [0.2, 0.1], floating_cols=np.array([False, True]), engine="numpy")
    check_kcl(xb, {"v_rows": [0.2, 0.1], "floating_cols": np.array([False, True])}, res)


def test_nodes_merged_across_a_near_short_obey_kcl():
    """Fixed by the solver (issue 13): two column nodes 1 Ω apart between 1 nS cells are merged
    (a near-short) and used to share one voltage, so the 1 Ω segment showed no current; each now
    gets back the drop its short branch's current sets."""
    r_col = np.zeros((2, 4))
    r_col[0, 1] = 1.0
    xb = circuitsim.Crossbar(conductance=[[0.0, 1e-9, 0.0, 0.0], [0.0, 1e-9, 0.0, 0.0]], r_row=0.0, r_col=r_col)
    drive = {"v_rows": np.array([[0.0, 1.0]]), "floating_cols": np.array([False, True, False, False])}
    check_kcl(xb, drive, circuitsim.simulate(xb, engine="numpy", **drive))


def test_subnormal_drive_voltages():
    """A drive of 5.8e-308 V (a subnormal number) is a drive like any other: currents of ~1e-314 A."""
    xb = circuitsim.Crossbar(conductance=[[1e-7]], r_col=0.1)
    drive = {"v_rows": np.array([[0.0], [5.82443958e-308]])}
    check_kcl(xb, drive, circuitsim.simulate(xb, engine="numpy", **drive))


def test_batched_steep_selector_vectors_each_converge():
    drive = {"v_rows": np.array([[0.125, 0.0], [1.0, 0.0]])}
    with pytest.warns(UnphysicalValueWarning):
        xb = circuitsim.Crossbar(conductance=[[0.0, 50.0], [0.0, 0.0]], r_col=1.0,
                                 selector=SinhSelector(i0=1e-8, v0=0.03125))
    check_kcl(xb, drive, circuitsim.simulate(xb, engine="numpy", **drive))


def test_leakage_through_an_off_transistor():
    g_cell, r_sense, v = 1.0, 1.0, 0.375
    xb = circuitsim.Crossbar(conductance=[[g_cell]], r_sense=r_sense, transistor=NmosAccess(w=1e-5))
    exact = v / (1 / g_cell + 1 / GMIN_S + r_sense)  # the off transistor conducts its gmin only
    got = circuitsim.simulate(xb, [v], v_gates=[0.0], engine="numpy").column_currents[0]
    assert abs(got - exact) <= FULL_SCALE_RTOL * exact / 3, f"{got!r} A, exact {exact!r} A"


def test_floating_column_behind_a_selector():
    """Fixed by the solver (issue 13): Newton's current floor is per node (its own conductance), so a
    column reached through one diode no longer stops 0.52 mV off under the array's largest conductance."""
    xb = circuitsim.Crossbar(conductance=[[0, 0], [0, 0.01], [0, 0], [0, 0]], selector=Diode(bipolar=True))
    drive = {"v_rows": [0.0, 1.0, 0.0, 0.0], "floating_cols": np.array([False, True])}
    check_kcl(xb, drive, circuitsim.simulate(xb, engine="numpy", **drive))


@sizes("slow")
def test_netlist_is_a_deck_of_known_cards_only(slow):
    cards = (".options", ".include", ".model", ".op", ".end")

    @given(designs())
    def body(case):
        kwargs, drive, refused = case
        assume(refused is None)
        xb = build(kwargs)
        one = {k: (np.atleast_2d(v)[0] if k in ("v_rows", "v_cols", "v_gates") else v) for k, v in drive.items()}
        try:
            deck = circuitsim.netlist(xb, **one)
        except ValueError as exc:
            assert_clear_error(exc)
            return
        for line in deck.splitlines():
            word = line.split()[0].lower() if line.strip() else ""
            assert word.startswith("*") or word in cards or word[:1] in "rvxmbd", line
            if not word.startswith("*"):
                assert not any(t in line.lower().split() for t in ("nan", "inf", "-inf", "shell")), line

    run_property(body, EXAMPLES * (20 if slow else 1), slow)


@pytest.fixture(scope="module")
def spice_worker():
    from circuitsim.spice.worker import SpiceWorker

    with SpiceWorker(timeout_s=60) as worker:
        yield worker


@sizes("slow")
def test_spice_agrees_with_numpy(slow, spice_worker):
    """ngspice and the numpy engine agree within 1e-6 of full scale (a few small designs)."""
    @given(designs(max_side=3))
    def body(case):
        kwargs, drive, refused = case
        assume(refused is None)
        xb = _simulate_or_clear_error(kwargs, drive, refused)
        assume(xb is not None)
        exact = circuitsim.simulate(xb, engine="numpy", **drive).column_currents
        try:
            res = circuitsim.simulate(xb, engine="spice", worker=spice_worker, **drive)
        except (ValueError, CircuitsimError) as exc:
            assert_clear_error(exc)
            return
        scale = max(np.abs(exact).max(), SPICE_FLOOR_A)
        err = np.abs(res.column_currents - exact).max() / scale
        assert err <= FULL_SCALE_RTOL, f"spice vs numpy {err:.2e} of full scale {scale:.3e} A ({xb.cell_type})"

    run_property(body, 40 if slow else 4, slow)


def test_spice_sinh_cell_agrees_to_1e_6(spice_worker):
    from scipy.optimize import brentq

    g, v = 10**-3.5, 0.828125
    selector = SinhSelector(i0=3.162277660168379e-06, v0=0.0755576209537249)
    v_inner = brentq(lambda x: g * (v - x) - selector.current(x)[0], 0.0, v, xtol=1e-15, rtol=1e-15)
    exact = g * (v - v_inner)
    xb = circuitsim.Crossbar(conductance=[[g]], selector=selector)
    got = circuitsim.simulate(xb, [v], engine="spice", worker=spice_worker).column_currents[0]
    assert abs(got - exact) <= FULL_SCALE_RTOL * exact / 3, f"spice {got!r} A, exact {exact!r} A"


# ---- TOML documents and the command line ---------------------------------------------------

def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def toml_document(doc: dict) -> str:
    lines = []
    for table, entries in doc.items():
        lines.append(f"[{table}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in entries.items()]
    return "\n".join(lines) + "\n"


toml_numbers = st.one_of(log_floats(-9, -2), st.integers(-3, 3), st.sampled_from(REFUSED_NUMBERS[:5]),
                         st.sampled_from(INJECTIONS), st.booleans())


@st.composite
def toml_documents(draw):
    """Design documents, mostly valid, with wrong or hostile values and keys mixed in."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    g = [[draw(conductance_values) for _ in range(cols)] for _ in range(rows)]
    doc = {"crossbar": {"conductance": g, "r_row": draw(wire_values), "r_col": draw(wire_values)},
           "drive": {"v_rows": [draw(st.floats(-1, 1)) for _ in range(rows)]}}
    if draw(st.booleans()):
        doc["selector"] = {"type": draw(st.sampled_from(["sinh", "diode", *INJECTIONS])), "i0": 1e-8}
    for _ in range(draw(st.integers(0, 2))):  # damage
        table = draw(st.sampled_from(sorted(doc)))
        key = draw(st.one_of(st.sampled_from(sorted(doc[table])), st.sampled_from(INJECTIONS)))
        doc[table][key] = draw(toml_numbers)
    return doc


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and stdout of the command line run in this process; an error must be one line
    on stderr naming the command, with no traceback."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        warnings.filterwarnings("ignore", category=UnphysicalValueWarning)
        code = cli_main(list(args))
    if code:
        lines = stderr.getvalue().splitlines()
        assert code in (1, 2) and len(lines) == 1 and lines[0].startswith(f"circuitsim {args[0]}: error: "), lines
    return code, stdout.getvalue()


@sizes("slow")
def test_toml_documents_give_an_answer_or_a_one_line_error(slow, tmp_path):
    design = tmp_path / "design.toml"

    @given(toml_documents())
    def body(doc):
        design.write_text(toml_document(doc))
        text = design.read_text()
        hostile = any(s in text for s in ("control", "shell", "\\n", "\\r", "* comment", "passwd", ";"))
        code, out = run_cli("simulate", str(design), "--engine", "numpy")
        deck_code, _ = run_cli("netlist", str(design))
        assert code == deck_code, "simulate and netlist disagree on whether the design is valid"
        if code == 0:
            assert not hostile, f"accepted a hostile document:\n{text}"
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UnphysicalValueWarning)
                xb, drive = load_design(design)
                res = circuitsim.simulate(xb, engine="numpy", **drive)
            check_kcl(xb, drive, res)
            printed = np.array([float(x) for x in out.splitlines()[1].split(":")[1].split()])
            np.testing.assert_allclose(printed, res.column_currents, rtol=1e-6, atol=1e-30)

    run_property(body, EXAMPLES * (20 if slow else 1), slow)


@sizes("slow")
def test_injection_is_always_refused(slow):
    """Hostile names and values never reach a deck: as a SPICE name, a device parameter name or
    value, a selector type, or a command-line assignment."""
    from circuitsim.characterize.protocols import parse_assignments
    from circuitsim.characterize.settings import make_device

    hostile = st.one_of(st.sampled_from(INJECTIONS),
                        st.tuples(st.text(max_size=8), st.sampled_from(INJECTIONS), st.text(max_size=8))
                        .map("".join))

    @given(hostile, st.sampled_from(["name", "param_name", "param_value", "selector_type", "assignment"]))
    def body(text, where):
        calls = {
            "name": lambda: spice_name(text),
            "param_name": lambda: make_device("vteam", {text: 1.0}),
            "param_value": lambda: make_device("vteam", {"ron": text}),
            "selector_type": lambda: crossbar_from_dict({"crossbar": {"conductance": [[1e-4]]},
                                                         "selector": {"type": text}}),
            "assignment": lambda: parse_assignments([f"ron={text}"], "--param"),
        }
        with pytest.raises((ValueError, TypeError)) as info:
            calls[where]()
        assert_clear_error(info.value)

    run_property(body, EXAMPLES * (20 if slow else 1), slow)

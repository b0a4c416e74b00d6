"""Bad input: every rejected case raises before anything runs, with a message that says why."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import NmosAccess, SinhSelector
from circuitsim.validate import spice_name

G = np.full((2, 3), 1e-4)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"conductance": [[1e-4, -1e-5]]}, ValueError, "conductance must be non-negative"),
    ({"conductance": [[np.nan, 1e-5]]}, ValueError, "conductance must be finite"),
    ({"conductance": [[np.inf]]}, ValueError, "conductance must be finite"),
    ({"conductance": [1e-4, 1e-4]}, ValueError, "2-D"),
    ({"conductance": np.zeros((0, 3))}, ValueError, "non-empty"),
    ({"conductance": [["a"]]}, TypeError, "conductance must be numeric"),
    ({"conductance": G, "r_row": -1.0}, ValueError, "r_row must be non-negative"),
    ({"conductance": G, "r_col": np.ones((3, 2))}, ValueError, r"r_col must be a scalar or have shape \(2, 3\)"),
    ({"conductance": G, "r_driver": np.ones(3)}, ValueError, r"r_driver must be a scalar or have shape \(2,\)"),
    ({"conductance": G, "r_sense": np.nan}, ValueError, "r_sense must be finite"),
    ({"conductance": G, "selector": "sinh"}, TypeError, "selector must be one of"),
    ({"conductance": G, "transistor": SinhSelector()}, TypeError, "transistor must be an NmosAccess"),
    ({"conductance": G, "selector": SinhSelector(), "transistor": NmosAccess()}, ValueError, "not both"),
])
def test_crossbar_rejects(kwargs, error, message):
    with pytest.raises(error, match=message):
        circuitsim.Crossbar(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"i0": -1e-6}, "SinhSelector.i0 must be positive"),
    ({"v0": 0.0}, "SinhSelector.v0 must be positive"),
    ({"v0": np.nan}, "SinhSelector.v0 must be finite"),
])
def test_selector_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SinhSelector(**kwargs)


def test_transistor_rejects_bad_size():
    with pytest.raises(ValueError, match="NmosAccess.w must be positive"):
        NmosAccess(w=0)


@pytest.mark.parametrize("call, error, message", [
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2, 0.3], engine="numpy"), ValueError, r"v_rows must have shape \(2,\)"),
    (lambda xb: circuitsim.simulate(xb, [np.nan, 0.2], engine="numpy"), ValueError, "v_rows must be finite"),
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2], engine="magic"), ValueError, "unknown engine 'magic'"),
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2], [0, 0], engine="numpy"), ValueError, r"v_cols must have shape"),
    (lambda xb: circuitsim.simulate(xb, [[0.1, 0.2]] * 3, np.zeros((2, 3)), engine="numpy"), ValueError,
     "v_cols has batch size 2"),
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2], v_gates=[1, 1], engine="numpy"), ValueError, "only to 1T1R"),
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2], floating_rows=[1, 0], engine="numpy"), ValueError,
     "floating_rows must be a boolean array"),
    (lambda xb: circuitsim.simulate(xb, [0.1, 0.2], floating_rows=np.array([True, True]), engine="numpy"),
     ValueError, "at least one row"),
    (lambda xb: circuitsim.simulate("not a crossbar", [0.1, 0.2], engine="numpy"), TypeError,
     "expected a circuitsim.Crossbar"),
    (lambda xb: circuitsim.netlist(xb, [[0.1, 0.2]] * 2), ValueError, "one input vector"),
])
def test_drive_rejects(call, error, message):
    with pytest.raises(error, match=message):
        call(circuitsim.Crossbar(conductance=G, r_row=1.0))


@pytest.mark.parametrize("bad", ["x\n.control", "shell rm", "a b", ".include", "", "1abc", "a;b", "x" * 80])
def test_spice_names_reject_injection(bad):
    with pytest.raises(ValueError, match="not a valid SPICE name"):
        spice_name(bad)


def test_every_number_in_a_deck_is_finite_and_nothing_else_is_injected():
    text = circuitsim.netlist(circuitsim.Crossbar(conductance=G, r_row=1.0, selector=SinhSelector()), [0.1, 0.2])
    lowered = text.lower()
    assert ".control" not in lowered and "shell" not in lowered
    assert "nan" not in lowered and "inf" not in lowered.replace(".include", "")


def test_immutable_design():
    xb = circuitsim.Crossbar(conductance=G)
    with pytest.raises(ValueError):
        xb.conductance[0, 0] = 1.0
    with pytest.raises(AttributeError):
        xb.r_row = 3.0
    assert xb.replace(r_row=2.0).r_row[0, 0] == 2.0

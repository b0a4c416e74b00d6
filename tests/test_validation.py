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


@pytest.mark.parametrize("value, error, message", [
    ([["1e-4"]], TypeError, "conductance must be numeric .*got text"),
    ([[1e-4, True]], TypeError, "conductance must be numeric .*got booleans"),
    ([[1e-4 + 0j]], TypeError, "conductance must be numeric .*got complex numbers"),
    ([[None, 1e-4]], TypeError, "conductance must be numeric .*got non-numbers"),
    ([[1e-4], [1e-4, 2e-4]], ValueError, "conductance must be a rectangular array"),
    ([[10**400]], ValueError, "conductance must be finite"),
])
def test_numbers_must_be_real_numbers(value, error, message):
    with pytest.raises(error, match=message):
        circuitsim.Crossbar(conductance=value)


@pytest.mark.parametrize("call, message", [
    (lambda: SinhSelector(i0="1e-6"), "SinhSelector.i0 must be numeric .*got text"),
    (lambda: NmosAccess(w=True), "NmosAccess.w must be numeric .*got booleans"),
    (lambda: circuitsim.Crossbar(conductance=G, r_row="2"), "r_row must be numeric .*got text"),
    (lambda: circuitsim.simulate(circuitsim.Crossbar(conductance=G), [0.1 + 0j, 0.2], engine="numpy"),
     "v_rows must be numeric .*got complex numbers"),
    (lambda: circuitsim.simulate(circuitsim.Crossbar(conductance=G), [True, False], engine="numpy"),
     "v_rows must be numeric .*got booleans"),
])
def test_scalars_and_drives_refuse_text_booleans_and_complex(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize("value, result", [(8, 8), (8.0, 8), (1e3, 1000), (np.int64(3), 3), (2.7, ValueError),
                                           (True, TypeError), ("3", TypeError), (np.inf, ValueError),
                                           (0, ValueError)])
def test_whole_numbers(value, result):
    from circuitsim.validate import integer

    if isinstance(result, type):
        with pytest.raises(result, match="rows must be"):
            integer("rows", value, minimum=1)
    else:
        assert integer("rows", value, minimum=1) == result


@pytest.mark.parametrize("array, message", [
    ({"rows": 2.7}, r"\[array\] rows must be a whole number, got 2.7"),
    ({"cols": "4"}, r"\[array\] cols must be a whole number"),
    ({"rows": 1e6, "cols": 1e6}, "1000000x1000000 array .* split it into tiles"),
    ({"g_max": float("inf")}, r"\[array\] g_max must be finite"),
    ({"g_min": float("nan")}, r"\[array\] g_min must be finite"),
])
def test_sweep_array_table_is_checked_before_allocating(array, message):
    import tracemalloc

    from circuitsim.sweep import make_point

    params = {f"array.{k}": v for k, v in ({"rows": 2, "cols": 2, "g_min": 1e-6, "g_max": 1e-4} | array).items()}
    tracemalloc.start()
    with pytest.raises((ValueError, TypeError), match=message):
        make_point(params, "numpy", (), 10.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10e6, f"{peak / 1e6:.1f} MB allocated before refusing"


def test_an_absurd_array_is_refused_before_it_is_copied():
    from circuitsim.validate import max_cells

    huge = np.broadcast_to(1e-4, (10**6, 10**6))  # a view: no memory behind it
    with pytest.raises(ValueError, match=r"1000000x1000000 array \(1e\+12 cells\) needs about .* split it into tiles"):
        circuitsim.Crossbar(conductance=huge)
    assert 10**6 < max_cells() < 10**12


@pytest.mark.parametrize("call, message", [
    (lambda: circuitsim.Crossbar(conductance=[[50.0, 1e-4]]), r"conductance = 50 S .*\(µS typed as S\?\)"),
    (lambda: circuitsim.Crossbar(conductance=[[1e-18, 1e-4]]), "conductance = 1e-18 S"),
    (lambda: circuitsim.Crossbar(conductance=G, r_col=2e6), "r_col = 2e\\+06 Ω"),
    (lambda: circuitsim.Crossbar(conductance=G, r_sense=1e-9), "r_sense = 1e-09 Ω"),
    (lambda: SinhSelector(i0=5.0), "SinhSelector.i0 = 5 A"),
    (lambda: NmosAccess(v_gate_on=180.0), "NmosAccess.v_gate_on = 180 V"),
    (lambda: circuitsim.simulate(circuitsim.Crossbar(conductance=G), [0.1, 800.0], engine="numpy"),
     "v_rows = 800 V"),
])
def test_unphysical_values_warn(call, message):
    from circuitsim.errors import UnphysicalValueWarning

    with pytest.warns(UnphysicalValueWarning, match=message + ".* computing it as given"):
        call()


def test_help_shows_device_defaults():
    import inspect
    import pydoc
    from dataclasses import fields

    from circuitsim import devices

    for cls in (getattr(devices, name) for name in devices.__all__):  # every device class: use lib_field
        text, signature = pydoc.render_doc(cls), str(inspect.signature(cls))
        assert "<factory>" not in text, cls.__name__
        for f in fields(cls):
            assert f"{f.name}: 'float' = {f.default!r}" in signature or f.type != "float", (cls.__name__, f.name)
    assert "i0: 'float' = 1e-08, v0: 'float' = 0.1" in pydoc.render_doc(SinhSelector)
    assert SinhSelector() == SinhSelector(i0=1e-8, v0=0.1)


@pytest.mark.parametrize("overrides, message", [
    ({"loop_cycles": 1e6}, r"settings.loop_cycles must be in \[1, 100\], got 1000000"),
    ({"n_reads": 2.5}, "settings.n_reads must be a whole number"),
    ({"retention_times_s": tuple(range(1, 5000))}, "settings.retention_times_s needs 1 to 1000 values, got 4999"),
    ({"pulse_widths_s": (1e-9, 1.0)}, "span 1e\\+09x .* at most 10000x"),
])
def test_absurd_characterize_settings_are_refused(overrides, message):
    from circuitsim.characterize.settings import default_settings

    with pytest.raises(ValueError, match=message):
        default_settings("vteam", **overrides)

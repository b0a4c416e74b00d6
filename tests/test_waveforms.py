"""Waveform builders: exact pulse areas (the encodings' closed forms), slot decoding, bad input."""
import numpy as np
import pytest

from circuitsim import waveforms as wf
from circuitsim.transient import Drive


def _area(drive: Drive, lo=0.0, hi=None) -> np.ndarray:
    """∫ v_rows dt over [lo, hi] of a PWL drive, exactly (its breakpoints are the grid)."""
    hi = drive.duration_s if hi is None else hi
    grid = np.union1d(drive.time_s, [lo, hi])
    grid = grid[(grid >= lo) & (grid <= hi)]
    v = np.stack([np.interp(grid, drive.time_s, col) for col in drive.v_rows.T], axis=1)
    return np.trapezoid(v, grid, axis=0)


def test_trapezoid_area_and_half_amplitude_width():
    t, v = wf.trapezoid(0.8, 10e-9, 2e-9, 4e-9, delay_s=1e-9, base_v=0.1)
    area = np.trapezoid(v - 0.1, t)
    assert abs(area / 8e-9 - 1) < 1e-12, f"area {area:.6e} V·s vs 8e-9"
    above = np.interp(np.linspace(0, t[-1], 200001), t, v) > 0.1 + 0.4
    fwhm = above.sum() * t[-1] / 200000
    assert abs(fwhm - 10e-9) < 2e-12, f"half-amplitude width {fwhm:.4e} s, err {fwhm - 10e-9:.1e}"
    assert list(t) == pytest.approx([1e-9, 3e-9, 10e-9, 14e-9], rel=1e-12)  # flat top 10 − (2 + 4)/2 = 7 ns


def test_pwm_charge_is_linear_in_the_value_even_below_the_edge_time():
    values = np.array([1.0, 0.5, -0.25, 0.0, 0.05, 0.01])  # 0.05, 0.01: narrower than the 1 ns edges
    drive = wf.pwm(values, 3, amplitude_v=0.2, full_width_s=10e-9, edge_s=1e-9, start_s=2e-9)
    expected = 0.2 * values * 10e-9
    err = np.max(np.abs(_area(drive) - expected)) / (0.2 * 10e-9)
    assert err < 1e-12, f"PWM area error {err:.1e} of full scale"
    assert drive.duration_s == pytest.approx(13e-9) and drive.v_cols.shape == (len(drive.time_s), 3)
    assert np.max(np.abs(drive.v_rows)) == pytest.approx(0.2)


def test_bit_serial_slots_decode_to_the_values():
    values = np.array([5, 3, -7, 0, 6])
    bits, slot, width = 3, 4e-9, 2e-9
    for msb_first in (True, False):
        drive = wf.bit_serial(values, 2, bits=bits, amplitude_v=0.1, slot_s=slot, width_s=width, edge_s=1e-9,
                              msb_first=msb_first)
        slot_area = np.array([_area(drive, k * slot, (k + 1) * slot) for k in range(bits)])  # (slots, rows)
        decoded = wf.bit_weights(bits, msb_first) @ slot_area / (0.1 * width)
        err = np.max(np.abs(decoded - values))
        assert err < 1e-9, f"msb_first={msb_first}: decoded {decoded}, err {err:.1e}"
    assert list(wf.bit_weights(3)) == [4, 2, 1] and list(wf.bit_weights(3, msb_first=False)) == [1, 2, 4]
    # analog-weighted slots: one integration over the whole drive gives the value
    scale = wf.bit_weights(bits) / 4
    drive = wf.bit_serial(values, 2, bits=bits, amplitude_v=0.1, slot_s=slot, width_s=width, edge_s=1e-9,
                          slot_scale=scale)
    err = np.max(np.abs(_area(drive) * 4 / (0.1 * width) - values))
    assert err < 1e-9, f"analog-weighted bit-serial err {err:.1e}"


def test_assemble_reproduces_every_line_on_the_union_grid():
    a = wf.trapezoid(1.0, 3e-9, 1e-9, delay_s=1e-9)
    b = wf.pwl([0.0, 2.5e-9, 6e-9], [0.3, -0.2, 0.0])
    gate = wf.gate_pulse(1.5, 0.5e-9, 5e-9, 0.25e-9)
    drive = wf.assemble(8e-9, [a, b, 0.4], [0.0, 0.1], [gate, gate, 0.0])
    for (t, v), col in ((a, drive.v_rows[:, 0]), (b, drive.v_rows[:, 1]), (gate, drive.v_gates[:, 0])):
        assert np.allclose(np.interp(t, drive.time_s, col), v, rtol=0, atol=1e-15)
    assert np.all(drive.v_rows[:, 2] == 0.4) and np.all(drive.v_cols[:, 1] == 0.1)
    assert drive.v_gates[:, 0].max() == 1.5 and np.interp(5.25e-9, drive.time_s, drive.v_gates[:, 0]) == 0.0


def test_pulse_rows_selects_rows():
    drive = wf.pulse_rows(4, 2, [1, 3], 0.5, 2e-9, 0.5e-9, v_unselected=0.25)
    assert drive.v_rows.shape[1] == 4 and drive.duration_s == pytest.approx(2 * 2.5e-9)  # ends at 0.5 + 1.5 + 0.5 ns
    assert np.all(drive.v_rows[:, [0, 2]] == 0.25) and drive.v_rows[:, 1].max() == pytest.approx(0.75)


@pytest.mark.parametrize("call, match", [
    (lambda: wf.pwl([0, 2e-9, 1e-9], [0, 1, 0]), "strictly increase: point 2"),
    (lambda: wf.pwl([-1e-9, 1e-9], [0, 1]), "start at >= 0"),
    (lambda: wf.trapezoid(1.0, 1e-9, 2e-9), "shorter than its edges"),
    (lambda: wf.trapezoid(1.0, -1e-9, 2e-9), "width_s must be positive"),
    (lambda: wf.pwm([0.5, 1.2], 2, amplitude_v=0.2, full_width_s=1e-8, edge_s=1e-9), r"\[-1, 1\]"),
    (lambda: wf.pwm([0.5], 2, amplitude_v=0.2, full_width_s=-1e-8, edge_s=1e-9), "full_width_s"),
    (lambda: wf.bit_serial([8], 1, bits=3, amplitude_v=0.1, slot_s=4e-9, width_s=2e-9, edge_s=1e-9), "got 8"),
    (lambda: wf.bit_serial([1.5], 1, bits=3, amplitude_v=0.1, slot_s=4e-9, width_s=2e-9, edge_s=1e-9),
     "whole numbers"),
    (lambda: wf.bit_serial([1], 1, bits=3, amplitude_v=0.1, slot_s=2e-9, width_s=2e-9, edge_s=1e-9),
     "must fit in its slot"),
    (lambda: wf.assemble(2e-9, [wf.trapezoid(1.0, 3e-9, 1e-9)], [0.0]), "after duration_s"),
    (lambda: wf.pulse_rows(4, 2, [4], 0.5, 2e-9, 0.5e-9), r"\[0, 3\]"),
    (lambda: wf.gate_pulse(1.2, 2e-9, 2.1e-9, 0.5e-9), "must come after"),
])
def test_bad_input_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)

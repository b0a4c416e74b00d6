"""Shared check that a SPICE subckt and its numpy twin agree (the three-line model test).

    def test_my_model_twin():
        assert_twin_agrees(MyModel(), sine(1.0, 1e3, cycles=2))

Where a device switches abruptly (Stanford-PKU's SET moves the state at ~6e9 /s), a timing
difference of 0.07 ps between two correct integrators is a state difference of 4e-4: comparing
at equal times there measures the integrators' step control, not the model. So each SPICE
point is compared with the twin's range over ±TIME_TOL (in ppm of the run): in a flat stretch
that range is the twin's value itself, in a steep one it allows the sub-picosecond shift.
"""
import numpy as np

from circuitsim.transient import Transient, transient

STATE_TOL = 1e-3  # absolute, of the normalized state range [0, 1]
CURRENT_RTOL = 0.01  # of the waveform's peak current
TIME_TOL = 1e-6  # of the drive's duration: 0.2 ps in a 200 ns run


def _outside(value: np.ndarray, shifted: list[np.ndarray]) -> np.ndarray:
    """How far each value lies outside the range of its shifted twin values (0 inside)."""
    low, high = np.min(shifted, axis=0), np.max(shifted, axis=0)
    return np.maximum(0.0, np.maximum(value - high, low - value))


def assert_twin_agrees(device, drive, *, min_state_swing: float = 0.05, max_step_s=None) -> tuple[Transient, Transient]:
    """Run `drive` through ngspice and through the twin; the state trajectories agree within
    STATE_TOL and the currents within CURRENT_RTOL of the peak at every SPICE time point (up to
    a timing shift of TIME_TOL), with margin (achieved ≤ tolerance/3), and the drive moved the
    state by at least min_state_swing (so the check has teeth)."""
    spice = transient(device, drive, engine="spice", max_step_s=max_step_s)
    dt = TIME_TOL * drive.duration_s
    # the twin at t - dt and t + dt only: its range there holds its value at t except at a turning
    # point, where leaving t out makes the check stricter, not looser
    shifted = [np.clip(spice.time_s + s, 0.0, drive.duration_s) for s in (-dt, dt)]
    grid = np.unique(np.concatenate(shifted))
    twin = transient(device, drive, engine="numpy", t_eval=grid)
    at = [np.searchsorted(grid, t) for t in shifted]
    state_err = np.max(_outside(spice.state, [twin.state[k] for k in at]))
    current_err = np.max(_outside(spice.current_a, [twin.current_a[k] for k in at])) / np.max(np.abs(spice.current_a))
    swing = np.ptp(spice.state)
    assert state_err <= STATE_TOL / 3, \
        f"{device}: state differs by {state_err:.2e} (> {STATE_TOL}/3) beyond a {dt:.1e} s shift"
    assert current_err <= CURRENT_RTOL / 3, \
        f"{device}: current differs by {current_err:.2e} of the peak (> {CURRENT_RTOL}/3)"
    assert swing >= min_state_swing, f"{device}: the drive moved the state by only {swing:.3g}"
    return spice, twin

"""Shared check that a SPICE subckt and its numpy twin agree (the three-line model test).

    def test_my_model_twin():
        assert_twin_agrees(MyModel(), sine(1.0, 1e3, cycles=2))
"""
import numpy as np

from circuitsim.transient import Transient, transient

STATE_TOL = 1e-3  # absolute, of the normalized state range [0, 1]
CURRENT_RTOL = 0.01  # of the waveform's peak current


def assert_twin_agrees(device, drive, *, min_state_swing: float = 0.05, max_step_s=None) -> tuple[Transient, Transient]:
    """Run `drive` through ngspice and through the twin; the state trajectories agree within
    STATE_TOL and the currents within CURRENT_RTOL of the peak at every SPICE time point, and
    the drive moved the state by at least min_state_swing (so the check has teeth)."""
    spice = transient(device, drive, engine="spice", max_step_s=max_step_s)
    twin = transient(device, drive, engine="numpy", t_eval=spice.time_s)
    state_err = np.max(np.abs(spice.state - twin.state))
    current_err = np.max(np.abs(spice.current_a - twin.current_a)) / np.max(np.abs(spice.current_a))
    swing = np.ptp(spice.state)
    assert state_err <= STATE_TOL, f"{device}: state differs by {state_err:.2e} (> {STATE_TOL})"
    assert current_err <= CURRENT_RTOL, f"{device}: current differs by {current_err:.2%} of the peak"
    assert swing >= min_state_swing, f"{device}: the drive moved the state by only {swing:.3g}"
    return spice, twin

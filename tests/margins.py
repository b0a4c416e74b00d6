"""Numeric assertions that keep a margin: achieved error ≤ tolerance/3, and say what was achieved.

Another CPU rounds differently; a check that passes by less than a factor of a few on one
machine fails on the next.
"""
import numpy as np

MARGIN = 3.0


def assert_close(measured, expected, *, rtol: float = 0.0, atol: float = 0.0, what: str = "value") -> None:
    """|measured − expected| ≤ (atol + rtol·|expected|)/3 everywhere; the message gives the
    achieved absolute and relative errors and the share of the tolerance used."""
    measured, expected = np.asarray(measured, dtype=float), np.asarray(expected, dtype=float)
    error = np.abs(measured - expected)
    allowed = atol + rtol * np.abs(expected)
    used = np.max(error / allowed) if error.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.max(np.where(expected != 0, error / np.abs(expected), np.inf)) if error.size else 0.0
    assert used <= 1.0 / MARGIN, (f"{what}: error {np.max(error):.3g} (relative {relative:.3g}) uses {used:.2f} of the "
                                  f"tolerance (rtol={rtol:g}, atol={atol:g}); at most 1/{MARGIN:g} allowed")

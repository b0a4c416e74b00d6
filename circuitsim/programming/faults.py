"""Manufacturing faults of an array: stuck-at cells, open lines, lines shorted to ground.

A stuck-at-ON cell's state is frozen at its device's ON end, a stuck-at-OFF cell's at its OFF
end (write pulses cannot move it). An open line is cut from its driver (it floats: its cells
see only what leaks through their neighbours); a shorted line is held at 0 V whatever its
driver applies. Programming reports all of them as cells that never reach their band
(ProgrammedArray.failed), and stuck-at cells as stuck (they do not move at all).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.validate import line_mask


def _mask(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return np.zeros(shape, dtype=bool)
    arr = np.asarray(value)
    if arr.dtype != bool or arr.shape != shape:
        raise ValueError(f"Faults.{name} must be a boolean array of shape {shape}, got {arr.dtype} {arr.shape}")
    return arr.copy()


@dataclass(frozen=True, eq=False)
class Faults:
    """Fault map of a rows×cols array: stuck_on / stuck_off (rows, cols) masks; open_rows,
    shorted_rows (rows,) and open_cols, shorted_cols (cols,) masks."""

    shape: tuple[int, int]
    stuck_on: np.ndarray | None = None
    stuck_off: np.ndarray | None = None
    open_rows: np.ndarray | None = None
    open_cols: np.ndarray | None = None
    shorted_rows: np.ndarray | None = None
    shorted_cols: np.ndarray | None = None

    def __post_init__(self):
        rows, cols = self.shape
        set_ = object.__setattr__
        set_(self, "stuck_on", _mask("stuck_on", self.stuck_on, (rows, cols)))
        set_(self, "stuck_off", _mask("stuck_off", self.stuck_off, (rows, cols)))
        if (self.stuck_on & self.stuck_off).any():
            raise ValueError("Faults: a cell cannot be stuck both ON and OFF")
        for name, n in (("open_rows", rows), ("shorted_rows", rows), ("open_cols", cols), ("shorted_cols", cols)):
            set_(self, name, line_mask(f"Faults.{name}", getattr(self, name), n))
        if (self.open_rows & self.shorted_rows).any() or (self.open_cols & self.shorted_cols).any():
            raise ValueError("Faults: a line cannot be both open and shorted")

    @property
    def stuck(self) -> np.ndarray:
        return self.stuck_on | self.stuck_off

    @property
    def line_faulty(self) -> np.ndarray:
        """(rows, cols) mask of cells on an open or shorted line."""
        rows = self.open_rows | self.shorted_rows
        cols = self.open_cols | self.shorted_cols
        return rows[:, None] | cols[None, :]

    def pin_states(self, states: np.ndarray, on_end: np.ndarray) -> np.ndarray:
        """States with the stuck cells at their ON end (on_end: per cell, 0 or 1) or OFF end."""
        out = np.array(states, dtype=float)
        out[self.stuck_on] = on_end[self.stuck_on]
        out[self.stuck_off] = 1.0 - on_end[self.stuck_off]
        return out

    def as_tree(self) -> dict:
        return {name: getattr(self, name) for name in ("stuck_on", "stuck_off", "open_rows", "open_cols",
                                                        "shorted_rows", "shorted_cols")}


def random_faults(shape: tuple[int, int], stuck_on_rate: float = 0.0, stuck_off_rate: float = 0.0, *,
                  seed) -> Faults:
    """Stuck-at cells drawn independently per cell at the given rates (seeded)."""
    for name, rate in (("stuck_on_rate", stuck_on_rate), ("stuck_off_rate", stuck_off_rate)):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {rate!r}")
    if stuck_on_rate + stuck_off_rate > 1:
        raise ValueError("stuck_on_rate + stuck_off_rate must not exceed 1")
    u = np.random.default_rng(seed).random(shape)
    off = (u >= stuck_on_rate) & (u < stuck_on_rate + stuck_off_rate)
    return Faults(shape, stuck_on=u < stuck_on_rate, stuck_off=off)

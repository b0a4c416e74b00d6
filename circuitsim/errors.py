"""One exception hierarchy, so callers can catch what they mean.

Everything circuitsim raises on purpose derives from CircuitsimError; bad input stays a
ValueError (it is one), everything that failed while running is one of these. This module
is the bottom layer: it imports nothing from the package.
"""
from __future__ import annotations


class CircuitsimError(Exception):
    """Base of every circuitsim failure that is not bad input."""


class ConvergenceError(CircuitsimError, RuntimeError):
    """The numpy engine's Newton iteration did not converge (even with source stepping)."""


class SpiceError(CircuitsimError, RuntimeError):
    """ngspice could not produce a trustworthy answer (convergence, bad deck, crash, time limit)."""


class SpiceTimeout(SpiceError):
    """A job ran past its time limit; the worker was killed."""


class EngineNotFoundError(CircuitsimError, FileNotFoundError):
    """What an engine needs is not installed (ngspice, libngspice, the surrogate's calibration file)."""


class StoreError(CircuitsimError, RuntimeError):
    """A results file cannot be used as asked."""


class StoreLockedError(StoreError):
    """Another process is writing the file."""


class StoreVersionError(StoreError):
    """The file was written with another circuitsim store format."""


class StoreCorruptError(StoreError):
    """The file is not a readable HDF5 file (truncated or damaged)."""


class StoreDamageWarning(UserWarning):
    """A damaged pending point was moved aside (or skipped by a reader) so the store goes on."""


class PointTimeout(CircuitsimError, TimeoutError):
    """A sweep point ran past its time limit; the process computing it was killed."""


class WorkerLostError(CircuitsimError, RuntimeError):
    """The process (or Dask worker) computing a sweep point died or vanished."""


class SchedulerError(CircuitsimError, RuntimeError):
    """A Dask scheduler address that cannot be used (unreachable, not Dask, no workers)."""


class ProgrammingError(CircuitsimError, ValueError):
    """A programming request that cannot succeed (target outside the device's range, a SET
    compliance too low, an impossible tolerance): refused before any pulse."""


class CalibrationRangeWarning(UserWarning):
    """A design or drive lies outside the range the surrogate's calibration was fitted on."""


class SurrogateAccuracyWarning(CalibrationRangeWarning):
    """The surrogate's error estimate exceeded its bound; the exact engine answered instead."""


class SurrogateAccuracyError(CircuitsimError, ValueError):
    """The surrogate cannot vouch for its answer (outside its calibrated range, or its error
    estimate above its bound) and falling back to the exact engine was disabled."""


class UnphysicalValueWarning(UserWarning):
    """A value lies outside any physical range for its unit (e.g. a cell conductance of 50 S,
    most likely µS typed as S); circuitsim computes it as given. Ranges: docs/design-files.md."""


class IllConditionedError(CircuitsimError, ArithmeticError):
    """The nodal equations cannot be solved to a trustworthy accuracy in double precision (a solve
    whose backward error stays large after iterative refinement, near-short wires in a nonlinear array)."""


class FormulaRangeWarning(UserWarning):
    """A closed-form estimate is used outside the geometry range its authors fitted and checked
    it on (e.g. Sakurai–Tamaru's wire capacitance for w/h < 0.3); the number is computed as given."""

"""circuitsim: SPICE-backed circuit-level simulation of resistive-memory crossbar arrays."""
import logging

__version__ = "0.1.0"

from circuitsim import devices  # noqa: E402
from circuitsim.design import Crossbar  # noqa: E402
from circuitsim.engines import netlist, simulate  # noqa: E402
from circuitsim.results import Result  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Crossbar", "Result", "devices", "netlist", "simulate", "__version__"]

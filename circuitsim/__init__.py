"""circuitsim: SPICE-backed circuit-level simulation of resistive-memory crossbar arrays."""
import logging

__version__ = "0.1.0"

from circuitsim import devices
from circuitsim.design import Crossbar
from circuitsim.engines import netlist, simulate
from circuitsim.results import Result

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Crossbar", "Result", "__version__", "devices", "netlist", "simulate"]

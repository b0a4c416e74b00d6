"""Compact device models: each has its parameters, a numpy twin, and a SPICE subckt in models/."""
from circuitsim.devices.access import NmosAccess
from circuitsim.devices.selectors import SinhSelector

__all__ = ["NmosAccess", "SinhSelector"]

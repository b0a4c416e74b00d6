"""Compact device models: each has its parameters, a numpy twin, and a SPICE subckt in models/."""
from circuitsim.devices.access import NmosAccess
from circuitsim.devices.memristors import (
    VTEAM,
    LinearIonDriftBiolek,
    LinearIonDriftJoglekar,
    StanfordPKU,
    Yakopcic,
)
from circuitsim.devices.selectors import CurrentLimiter, Diode, SinhSelector
from circuitsim.devices.threshold import ThresholdSwitch

__all__ = ["VTEAM", "CurrentLimiter", "Diode", "LinearIonDriftBiolek", "LinearIonDriftJoglekar", "NmosAccess",
           "SinhSelector", "StanfordPKU", "ThresholdSwitch", "Yakopcic"]

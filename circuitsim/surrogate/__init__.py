"""The calibrated fast model: its forms (forms), fitting and evaluating them (model), and the
calibration pipeline from a SPICE sweep to a calibration file (calibration)."""

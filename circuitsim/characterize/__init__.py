"""Device characterization: protocols run in ngspice or the twin (protocols), their settings
and per-model defaults (settings), figures extracted from waveforms alone (extract), plots."""

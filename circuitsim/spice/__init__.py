"""Running ngspice: one NgSpiceShared per worker process (worker), jobs with a time limit,
crash isolation, recycling and convergence aids."""

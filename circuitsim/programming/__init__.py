"""Programming memristor arrays: one write pulse (cell), write-verify of whole arrays (verify),
the quasi-static pulse model it runs on (pulses), faults, and what happens after (drift).

Public entry point: `program_array(xb, cells, target_conductance, write_verify)` returns a
frozen ProgrammedArray with the achieved conductances (rows, cols) [S], pulses per cell and
write energy [J] among its fields.
"""
from circuitsim.programming.cell import Programming, program_cell
from circuitsim.programming.drift import ReadNoise, RetentionLaw, conductance_at
from circuitsim.programming.faults import Faults, random_faults
from circuitsim.programming.record import program_to_store
from circuitsim.programming.verify import ProgrammedArray, ProgrammingError, WriteVerify, program_array

__all__ = ["Faults", "ProgrammedArray", "Programming", "ProgrammingError", "ReadNoise", "RetentionLaw",
           "WriteVerify", "conductance_at", "program_array", "program_cell", "program_to_store", "random_faults"]

"""Programming memristor arrays: one write pulse (cell), write-verify of whole arrays (verify),
the quasi-static pulse model it runs on (pulses), faults, and what happens after (drift).

Public entry point: `program_array(xb, cells, target_conductance, write_verify)` returns a
frozen ProgrammedArray with the achieved conductances (rows, cols) [S], pulses per cell and
write energy [J] among its fields.
"""
from circuitsim.programming.cell import Programming, program_cell
from circuitsim.programming.faults import Faults, random_faults
from circuitsim.programming.verify import ProgrammedArray, ProgrammingError, WriteVerify, program_array

__all__ = ["Faults", "ProgrammedArray", "Programming", "ProgrammingError", "WriteVerify", "program_array",
           "program_cell", "random_faults"]

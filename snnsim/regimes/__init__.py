"""The execution regimes' runs outside the traced engine loop, on the engine's untraced executor
(``snnsim.engine.Replay``; docs/regimes.md):

- temporal reversal, RevSNN (``reversible``): rebuild a reversible block's input from its output
  (``invert_block``, ``invert_chain`` over a ReversibleSequence), with a rigorous bound on the reconstruction's error;
- temporal reversal, T-RevSNN (``trev``): the forward that keeps the column states (``forward``), the exact inverse of
  a column (``invert_column``) and one level's forward (``level_forward``).

The coupling, the column schedule and each level's run are the kinds' own (``snnsim.layers.reversible``,
``snnsim.layers.trevsnn``), written once and shared with inference and training; these functions only choose
what to re-simulate and what to do with a reconstruction at risk.
"""

from ..layers.reversible import reversible_ops
from .reversible import InverseResult, invert_block, invert_chain
from .trev import ColumnInverse, TRevForward, forward, invert_column, level_forward

__all__ = ["ColumnInverse", "InverseResult", "TRevForward", "forward", "invert_block", "invert_chain", "invert_column",
           "level_forward", "reversible_ops"]

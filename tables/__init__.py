"""Table declarations and the state adapters around them.

The adapters (``matching.MatchingState``) take any mutable mapping, so they
are tested with a ``dict``; the Faust tables are declared in ``declarations``.

Note: this top-level package is named ``tables`` like PyTables' import name;
the project must not depend on PyTables.
"""

from .matching import OUTBOX_SLOTS, MatchingState, Output, Position, Source

__all__ = ["OUTBOX_SLOTS", "MatchingState", "Output", "Position", "Source"]

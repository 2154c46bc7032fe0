"""Table declarations and the state adapters around them.

The adapters (``matching.MatchingState``) take any mutable mapping, so they
are tested with a ``dict``; the Faust tables are declared in ``declarations``.

Note: this top-level package is named ``tables`` like PyTables' import name;
the project must not depend on PyTables.
"""

from .analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, fills_of
from .matching import MatchingState, Position, Source
from .outbox import OUTBOX_SLOTS, Output, SequencedState

__all__ = [
    "OUTBOX_SLOTS",
    "BarsAnalytics",
    "MatchingState",
    "Output",
    "PnlLedger",
    "Position",
    "ProfitAnalytics",
    "SequencedState",
    "Source",
    "fills_of",
]

"""Table declarations and the state adapters around them.

The adapters (``matching.MatchingState`` and those of ``analytics``) read any
mapping and write into a :class:`Transaction`, so they are tested with a
``dict``; the Faust tables are declared in ``declarations``.

Note: this top-level package is named ``tables`` like PyTables' import name;
the project must not depend on PyTables.
"""

from .analytics import BarsAnalytics, KeyedState, PnlLedger, ProfitAnalytics, coalesce, fills_of
from .matching import MatchingState, Source
from .transaction import Output, Transaction

__all__ = [
    "BarsAnalytics",
    "KeyedState",
    "MatchingState",
    "Output",
    "PnlLedger",
    "ProfitAnalytics",
    "Source",
    "Transaction",
    "coalesce",
    "fills_of",
]

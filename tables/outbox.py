"""Outputs, and exactly-once updates of single-key state fed by sequenced inputs.

The analytics consume trades, which carry a gapless per-instrument ``seq``.
Their state for a key (an instrument's bars, an account's position) is one
table value holding the *mark* of the last input applied, ``[seq, leg]``
(``leg`` tells apart the buy and the sell fill of one trade). An input at or
below the mark is a replay: its outputs are re-sent from an outbox slot
written just before the state, so a crash between the two only causes a
recomputation of the same outputs. Slots form a ring of ``OUTBOX_SLOTS`` per
key, more than the inputs processed between two offset commits.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, NamedTuple

__all__ = ["OUTBOX_SLOTS", "Output", "SequencedState", "outputs_from_json"]

OUTBOX_SLOTS = 32_768


class Output(NamedTuple):
    """A message to send: ``stream`` names the topic it goes to."""

    stream: str
    key: str | None
    value: dict[str, Any]


def outputs_from_json(stored: list[list[Any]]) -> list[Output]:
    return [Output(stream, key, value) for stream, key, value in stored]


Step = Callable[[Any], tuple[Any, list[Output]]]


class SequencedState:
    """Apply ``step`` to the state of ``key`` once per mark; re-send outputs on replay."""

    def __init__(self, table: MutableMapping[str, Any], slots: int = OUTBOX_SLOTS) -> None:
        self.table = table
        self.slots = slots

    def apply(self, key: str, mark: list[int], step: Step) -> list[Output]:
        current = self.table.get(key)
        slot = f"x:{key}:{mark[0] % self.slots}:{mark[1]}"
        if current is not None and current["mark"] >= mark:
            sent = self.table.get(slot)
            if sent is not None and sent["mark"] == mark:
                return outputs_from_json(sent["outputs"])
            return []
        state, outputs = step(None if current is None else current["state"])
        self.table[slot] = {"mark": mark, "outputs": [list(output) for output in outputs]}
        self.table[key] = {"mark": mark, "state": state}
        return outputs

    def state(self, key: str) -> Any:
        current = self.table.get(key)
        return None if current is None else current["state"]

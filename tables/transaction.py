"""One batch's effects: the outputs to send and the last value of every changed table key.

The state adapters write into a :class:`Transaction` while they process a
batch; the checkpoint (``exchange_app/checkpoint.py``) then makes it durable
in a fixed order: outputs, changelog, local store, input offsets. A key
written many times in a batch reaches the changelog once, with its last value
(``None`` deletes it).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

__all__ = ["Output", "Transaction"]


class Output(NamedTuple):
    """A message to send: ``stream`` names its topic; ``partition`` None hashes ``key``."""

    stream: str
    key: str | None
    value: Any
    partition: int | None = None


class Transaction:
    """Outputs in the order they were made, and per (table, partition) the changed keys."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        # keyed by id(table): plain dicts (in tests) are tables too and are unhashable
        self.changes: dict[tuple[int, int], dict[str, Any]] = {}
        self._tables: dict[int, Any] = {}

    def send(self, output: Output) -> None:
        self.outputs.append(output)

    def write(self, table: Any, partition: int, key: str, value: Any) -> None:
        """Set ``key`` of ``table``'s ``partition`` to ``value`` (``None`` deletes it)."""
        changes = self.changes.get((id(table), partition))
        if changes is None:
            changes = self.changes[(id(table), partition)] = {}
            self._tables[id(table)] = table
        changes[key] = value

    def tables(self) -> Iterator[tuple[Any, int, dict[str, Any]]]:
        for (table, partition), changes in self.changes.items():
            yield self._tables[table], partition, changes

    @property
    def writes(self) -> int:
        return sum(len(changes) for changes in self.changes.values())

    def __bool__(self) -> bool:
        return bool(self.outputs or self.changes)

    def apply(self) -> None:
        """Write the changes straight into tables that are plain mappings: for tests."""
        for table, _, changes in self.tables():
            _write(table, changes)


def _write(mapping: MutableMapping[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value

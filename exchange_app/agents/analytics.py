"""The analytics agents: bars/SMA, window profit, the tape and per-account P&L, per batch.

::

    trades-batched[p] ──► [analyse_trades] ──► sma, profit    (instrument, partition p)
    (a matching batch's       │        └─► tape table     (recent trades, final bars)
     trades, packed)          └─► fills[q] ──► [compute_pnl] ──► pnl   (account)
                                  (one message per batch and partition q)

Within a batch, an ``sma``/``profit`` record that a later one of the same
instrument supersedes is dropped unless it is ``final``, and so is a ``pnl``
record superseded for the same account and instrument (:func:`coalesce`).

While they keep up, both agents take their input at most once per
``EXCHANGE_ANALYTICS_INTERVAL_MS`` (250; :func:`~.batches.rest`): a batch per
matching batch would cost the broker a fetch and the worker a transaction each,
for a handful of trades. So under a steady flow the ``sma``, ``profit`` and
``pnl`` records of a quarter of a second come out together, and a ``pnl``
record up to about two intervals after its trade. Such a batch is tens of
milliseconds of work: it hands the worker's loop back every millisecond
(:class:`~exchange_app.sharing.LoopShare`), so that matching is not held up.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from faust.types import EventT, StreamT

from exchange_app.application import app
from exchange_app.metrics import metrics
from exchange_app.packing import PackingError, unpack
from exchange_app.routing import key_partition
from exchange_app.sharing import LoopShare
from exchange_app.topics import fills, trade_batches
from exchange_app.wire import dlq_record, dumps, loads
from tables.analytics import BarsAnalytics, PnlLedger, ProfitAnalytics, coalesce, fills_of
from tables.declarations import bars_table, positions_table, profit_table, tape_table
from tables.tape import TradeTape
from tables.transaction import Output, Transaction

from .batches import batches, complete

__all__ = ["analyse_trades", "bars", "compute_pnl", "ledger", "profits", "tape"]

log = logging.getLogger(__name__)
settings = app.settings

bars = BarsAnalytics(bars_table, settings.bar_seconds, settings.sma_bars)
profits = ProfitAnalytics(profit_table, settings.bar_seconds, settings.sma_bars)
ledger = PnlLedger(positions_table)
tape = TradeTape(tape_table, settings.bar_seconds)


@app.on_partitions_assigned.connect
def _partitions_moved(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    # Faust assigns only after every event taken was acked (``stream_wait_empty``),
    # so this never runs while a batch is computed, even as it hands the loop back.
    for adapter in (bars, profits, ledger, tape):
        adapter.invalidate()


def _unpacked(event: EventT) -> list[bytes] | str:
    """The records packed in ``event``, or why it is not a packed batch."""
    try:
        return [record.value or b"" for record in unpack(event.message.value or b"")]
    except PackingError as exc:
        return f"not a packed batch: {exc}"


def _dlq(event: EventT, reasons: list[str], raw: bytes, index: int | None = None) -> Output:
    """A DLQ record for ``raw``, read from ``event`` (record ``index`` of it, if packed)."""
    message = event.message
    source: dict[str, Any] = {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
    }
    if index is not None:
        source["index"] = index
    metrics.dlq.inc()
    return Output("dlq", None, dlq_record(reasons, source, raw, limit=settings.max_message_bytes))


#: The place of an input in a batch: (event index, record index within the event).
At = tuple[int, int]


class _Failed(Exception):
    """Input ``at`` of a batch raised ``cause``."""

    def __init__(self, at: At, cause: Exception) -> None:
        super().__init__(at, cause)
        self.at = at
        self.cause = cause


async def _guarded(
    adapters: Sequence[Any], attempt: Callable[[dict[At, list[str]]], Awaitable[Transaction]]
) -> Transaction:
    """``attempt(failed)`` until it passes, each input that raised added to ``failed``.

    An input that raises (a bug, or data no check foresaw) must neither stop the
    agent nor take the rest of its batch down with it. Its effects may be half
    applied in the ``adapters``' memory, so that is dropped and the batch is
    computed again from the committed state without the inputs that failed
    (:func:`_inputs` sends those to the DLQ): the rest is applied once.
    """
    failed: dict[At, list[str]] = {}
    while True:
        try:
            return await attempt(failed)
        except _Failed as failure:
            log.error("record %s of a batch raised: to the DLQ", failure.at, exc_info=failure.cause)
            failed[failure.at] = [f"internal error: {failure.cause!r}"[:500]]
            for adapter in adapters:
                adapter.invalidate()


async def _inputs(
    events: Sequence[EventT],
    decoded: Sequence[Sequence[Any] | str],
    failed: dict[At, list[str]],
    tx: Transaction,
    share: LoopShare,
) -> AsyncIterator[tuple[At, int, Any]]:
    """``(at, partition, record)`` for every record of the batch but those that failed.

    ``decoded`` holds each event's records, or why it has none. Those and the records
    that ``failed`` go to the DLQ in ``tx``. The loop is handed back after each event.
    """
    for at, (event, records) in enumerate(zip(events, decoded, strict=True)):
        if isinstance(records, str):
            tx.send(_dlq(event, [records], event.message.value or b""))
            continue
        for index, record in enumerate(records):
            reasons = failed.get((at, index))
            if reasons is None:
                yield (at, index), event.message.partition, record
            else:
                raw = record if isinstance(record, bytes) else dumps(record)
                tx.send(_dlq(event, reasons, raw, index))
        await share.turn()


async def _drop_uncommitted_trades() -> None:
    for adapter in (bars, profits, tape):
        adapter.invalidate()


async def _drop_uncommitted_fills() -> None:
    ledger.invalidate()


@app.agent(trade_batches)
async def analyse_trades(stream: StreamT[Any]) -> None:
    """Bars with every SMA, the window profit, the tape, and each trade's fills by account."""
    every_ms = settings.analytics_interval_ms
    async for events in batches(stream, every_ms=every_ms, on_restart=_drop_uncommitted_trades):
        await _analyse(events)


async def _analyse(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    share = LoopShare()
    unpacked = [_unpacked(event) for event in events]

    async def attempt(failed: dict[At, list[str]]) -> Transaction:
        tx = Transaction()
        by_account: dict[int, list[dict[str, Any]]] = defaultdict(list)
        async for at, partition, raw in _inputs(events, unpacked, failed, tx, share):
            try:
                trade = loads(raw)
                bars.handle(trade, partition, tx)
                profits.handle(trade, partition, tx)
                tape.record_trade(trade, partition, tx)
                for fill in fills_of(trade):
                    by_account[key_partition(fill["account"], settings.partitions)].append(fill)
            except Exception as exc:
                raise _Failed(at, exc) from exc
        for adapter in (bars, profits, tape):
            adapter.flush(tx)
        tx.outputs = coalesce(tx.outputs)
        for output in tx.outputs:
            if output.stream == "sma" and output.partition is not None:
                tape.record_bar(output.value, output.partition, tx)
        for partition, batch in by_account.items():
            tx.send(Output("fills", None, dumps({"fills": batch}), partition))
        return tx

    tx = await _guarded((bars, profits, tape), attempt)
    await complete(events, tx, started, share=share)


@app.agent(fills)
async def compute_pnl(stream: StreamT[bytes]) -> None:
    """FIFO positions and realized/unrealized P&L per account and instrument."""
    every_ms = settings.analytics_interval_ms
    async for events in batches(stream, every_ms=every_ms, on_restart=_drop_uncommitted_fills):
        await _compute_pnl(events)


def _fills(event: EventT) -> list[dict[str, Any]] | str:
    """The fills in ``event``, or why it holds none."""
    try:
        fills = loads(event.message.value or b"")["fills"]
    except (ValueError, TypeError, KeyError) as exc:
        return f"not a batch of fills: {exc!r}"[:500]
    if not isinstance(fills, list):
        return f"not a batch of fills: 'fills' is a {type(fills).__name__}"
    return fills


async def _compute_pnl(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    share = LoopShare()
    decoded = [_fills(event) for event in events]

    async def attempt(failed: dict[At, list[str]]) -> Transaction:
        tx = Transaction()
        async for at, partition, fill in _inputs(events, decoded, failed, tx, share):
            try:
                ledger.handle(fill, partition, tx)
            except Exception as exc:
                raise _Failed(at, exc) from exc
        ledger.flush(tx)
        tx.outputs = coalesce(tx.outputs)
        return tx

    tx = await _guarded((ledger,), attempt)
    await complete(events, tx, started, share=share)

"""Noticing a broker that lost its data, before local state is trusted.

The embedded broker keeps topics in memory: after it restarts, every topic is
empty while a worker's RocksDB still holds tables, changelog positions and the
input offsets it has applied. Trusting that state would make Faust raise
``ConsistencyError`` or, worse, skip new orders whose offsets restart at 0.

So the first worker on a broker writes a random *epoch* into a one-partition
topic, and every worker records the epoch its local state was built on. At
start, a worker whose recorded epoch is not the broker's first epoch record
knows the broker's log is not the one its state came from: it logs what
happened and discards its local tables, which are rebuilt from (now empty)
changelogs. A real Kafka cluster keeps its topics, so this never fires there.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from ..connection import client_options
from .admin import ensure_topics
from .offsets import true_end_offsets

__all__ = [
    "EPOCH_FILE",
    "BrokerEpochError",
    "EpochProbe",
    "broker_epoch",
    "reconcile_local_state",
]

log = logging.getLogger(__name__)
EPOCH_FILE = "broker-epoch"


class BrokerEpochError(RuntimeError):
    """The broker's epoch could not be read or written."""


async def _first_record(
    consumer: AIOKafkaConsumer, tp: TopicPartition, timeout: float
) -> str | None:
    reported = await consumer.end_offsets([tp])
    end = (await true_end_offsets(consumer._client, reported))[tp]
    if end == 0:
        return None
    consumer.seek(tp, 0)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
        for records in batch.values():
            for record in records:
                return bytes(record.value or b"").decode()
    raise BrokerEpochError(f"could not read the epoch record of {tp.topic} within {timeout} s")


async def broker_epoch(
    bootstrap: list[str], topic: str, *, replication: int = 1, timeout: float = 30.0
) -> str:
    """The broker's epoch: the first record of ``topic``, written now if there is none."""
    await ensure_topics(bootstrap, [topic], partitions=1, replication=replication)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options()
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        epoch = await _first_record(consumer, tp, timeout)
        if epoch is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, enable_idempotence=False, **client_options()
            )
            await producer.start()
            try:
                await producer.send_and_wait(topic, uuid.uuid4().hex.encode(), partition=0)
            finally:
                await producer.stop()
            # Another worker may have raced us: the first record wins.
            epoch = await _first_record(consumer, tp, timeout)
        if epoch is None:
            raise BrokerEpochError(f"the epoch written to {topic} is not readable")
        return epoch
    finally:
        await consumer.stop()


class EpochProbe:
    """Reads the broker's epoch again and again with one consumer kept open.

    A running worker checks every few seconds; :func:`broker_epoch` starts an
    admin client and a consumer each time, which paused the worker's loop long
    enough to show in the order latency's p99. When the record cannot be read
    (the broker lost the topic), the probe falls back to :func:`broker_epoch`,
    which creates the topic and writes a new epoch, so a change is still seen.
    """

    def __init__(self, bootstrap: list[str], topic: str, *, replication: int = 1) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.replication = replication
        self.tp = TopicPartition(topic, 0)
        self.consumer: AIOKafkaConsumer | None = None

    async def read(self, timeout: float = 10.0) -> str:
        try:
            if self.consumer is None:
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap, enable_auto_commit=False, **client_options()
                )
                await consumer.start()
                consumer.assign([self.tp])
                self.consumer = consumer
            epoch = await asyncio.wait_for(_first_record(self.consumer, self.tp, timeout), timeout)
        except Exception as exc:
            log.debug("epoch probe: %r; asking the slow way", exc)
            epoch = None
        if epoch is None:
            epoch = await broker_epoch(
                self.bootstrap, self.topic, replication=self.replication, timeout=timeout
            )
        return epoch

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()


def reconcile_local_state(epoch: str, state_dir: Path, tabledir: Path) -> bool:
    """Discard ``tabledir`` if it was built on another broker epoch; record ``epoch``.

    Returns whether local state was discarded.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    marker = state_dir / EPOCH_FILE
    recorded = marker.read_text().strip() if marker.exists() else None
    discarded = False
    if recorded is not None and recorded != epoch:
        log.warning(
            "The broker's log is not the one this worker's local state was built on "
            "(broker epoch %s, local state from epoch %s): the broker was restarted or "
            "replaced and lost its topics. Discarding the local tables in %s; they are "
            "rebuilt from the broker's changelogs.",
            epoch,
            recorded,
            tabledir,
        )
        shutil.rmtree(tabledir, ignore_errors=True)
        discarded = True
    elif recorded is None and tabledir.exists() and any(tabledir.iterdir()):
        log.warning(
            "Local tables in %s have no recorded broker epoch (they were found ahead of "
            "the broker, or predate this check). Discarding the local tables; they are "
            "rebuilt from the broker's changelogs.",
            tabledir,
        )
        shutil.rmtree(tabledir, ignore_errors=True)
        discarded = True
    tabledir.mkdir(parents=True, exist_ok=True)
    marker.write_text(epoch + "\n")
    return discarded

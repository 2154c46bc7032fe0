"""True end offsets, read from a fetch's high watermark.

Tansu answers ``ListOffsets(latest)`` with the base offset of the last produce
batch + 1, not the end of the log: 20 records at offsets 12..31 are reported as
ending at 13. Faust's recovery trusts that number, so it either stops restoring
a changelog early or raises ``ConsistencyError`` ("persisted offset is higher
than the last offset"). Fetch responses carry the correct high watermark, so we
ask for one byte at the reported end and take the larger of the two numbers.
On a real Kafka cluster the two agree and the probe costs one short fetch.

Tansu also answers a fetch only when it next looks, after half the remaining
``max_wait``, even if records arrive meanwhile (Kafka answers as soon as they
do): with Faust's fixed 1.5 s every hop of the pipeline would wait that long.
The worker's consumer takes ``fetch_max_wait_ms`` from the settings instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, cast

from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["EndOffsetsConsumer", "Transport", "true_end_offsets"]

READ_UNCOMMITTED = 0
#: Tansu answers a fetch with max_wait 0 with no partitions at all.
PROBE_WAIT_MS = 10


async def true_end_offsets(client: Any, reported: Mapping[TP, int]) -> dict[TP, int]:
    """Correct ``reported`` end offsets with the high watermarks of a probe fetch.

    ``client`` is an ``aiokafka.AIOKafkaClient``; partitions whose leader is
    unknown or whose probe fails keep their reported offset.
    """
    result = dict(reported)
    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for tp, offset in reported.items():
        leader = client.cluster.leader_for_partition(TopicPartition(tp.topic, tp.partition))
        if leader is None or leader < 0:
            continue
        by_node[leader][tp.topic].append((tp.partition, max(offset, 0), 1))
    for node, topics in by_node.items():
        request = FetchRequest(
            PROBE_WAIT_MS, 1, 1, READ_UNCOMMITTED, [(t, parts) for t, parts in topics.items()]
        )
        response = await client.send(node, request)
        for topic, partitions in response.topics:
            for partition, error_code, highwater, *_ in partitions:
                tp = cast(TP, TopicPartition(topic, partition))
                if error_code == 0 and tp in result and highwater > result[tp]:
                    result[tp] = highwater
    return result


class EndOffsetsConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust's consumer reads the agents' inputs, off the order-to-trade path.
        wait_ms = getattr(getattr(self.app, "settings", None), "follow_wait_ms", None)
        if wait_ms is not None:
            # Faust fixes fetch_max_wait_ms at 1500; aiokafka reads it when it starts.
            consumer._fetch_max_wait_ms = wait_ms
        return consumer

    async def _highwaters(self, partitions: Any) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        client = self._ensure_consumer()._client
        return await true_end_offsets(client, reported)


class EndOffsetsConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return EndOffsetsConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :func:`true_end_offsets` in its consumer."""

    Consumer = EndOffsetsConsumer

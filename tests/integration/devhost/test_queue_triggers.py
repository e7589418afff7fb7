"""Queue triggers and queue outputs against a real Azurite, with the extension's retry and poison rules."""

from __future__ import annotations

import base64
import uuid

import httpx

from tests.integration.devhost.conftest import Devhost, b64, eventually, texts


def test_an_http_output_binding_puts_base64_messages_on_the_queue(streams_host: Devhost) -> None:
    marker = f"order-{uuid.uuid4()}"
    assert httpx.post(f"{streams_host.url}/api/enqueue", content=marker).status_code == 202
    queue = streams_host.queue("out")

    def ours() -> set[str]:
        return {m for m in (base64.b64decode(t).decode() for t in texts(queue)) if m.startswith(marker)}

    assert eventually(lambda: len(ours()) == 3 and ours(), what="three messages") == {
        marker, f"{marker}-1", f"{marker}-2"}


def test_a_processed_message_is_deleted_and_its_output_written(streams_host: Devhost) -> None:
    marker = f"job-{uuid.uuid4()}"
    work = streams_host.queue("work")
    work.send_message(b64(marker))
    record = eventually(lambda: next((r for r in streams_host.records("work") if r["body"] == marker), None),
                        what="the work function to run")
    assert record["type"] == "QueueMessage" and record["dequeue_count"] == 1
    assert record["has_times"] and record["pop_receipt"]
    done = streams_host.queue("done")
    eventually(lambda: b64(f"done:{marker}") in texts(done), what="the output message")
    eventually(lambda: work.get_queue_properties().approximate_message_count == 0, what="the message to be deleted")


def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(streams_host: Devhost) -> None:
    marker = f"bad-{uuid.uuid4()}"
    streams_host.queue("fail").send_message(b64(marker))
    poison = streams_host.queue(f"{streams_host.queues['fail']}-poison")
    eventually(lambda: b64(marker) in texts(poison), what="the message in the poison queue")
    attempts = [r["dequeue_count"] for r in streams_host.records("flaky") if r["body"] == marker]
    assert attempts == [1, 2, 3]  # host.json maxDequeueCount is 3
    assert marker not in [base64.b64decode(t).decode() for t in texts(streams_host.queue("fail"))]
    assert "Function 'flaky' failed on message" in streams_host.log()


def test_a_message_that_is_not_base64_goes_straight_to_the_poison_queue(streams_host: Devhost) -> None:
    raw = f"not base64 {uuid.uuid4()}!"
    streams_host.queue("work").send_message(raw)
    poison = streams_host.queue(f"{streams_host.queues['work']}-poison")
    eventually(lambda: raw in texts(poison), what="the undecodable message in the poison queue")
    assert "Message decoding has failed" in streams_host.log()
    assert all(raw not in r["body"] for r in streams_host.records("work"))  # the function never saw it


def test_encoding_none_hands_over_raw_text_both_ways(plain_host: Devhost) -> None:
    marker = f'{{"job": "{uuid.uuid4()}"}}'
    plain_host.queue("work").send_message(marker)
    eventually(lambda: any(r["body"] == marker for r in plain_host.records("work")), what="the work function")
    eventually(lambda: f"done:{marker}" in texts(plain_host.queue("done")), what="the plain output message")


def test_messages_run_concurrently_up_to_the_batch_size(streams_host: Devhost) -> None:
    slow = streams_host.queue("slow")
    for i in range(8):
        slow.send_message(b64(f"slow-{i}"), visibility_timeout=1)  # all become visible together
    eventually(lambda: len(streams_host.records("slow")) >= 8, timeout=20, what="eight slow invocations")
    records = streams_host.records("slow")
    peak = max(r["in_flight"] for r in records)
    assert peak == 4  # batchSize 4, newBatchThreshold 0: four at once, never more

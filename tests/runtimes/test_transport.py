"""The ZeroMQ transport on its own: two transports in one process, over IPC."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from actorfw.core.engine import TELL, Envelope
from actorfw.node.transport import ZmqTransport
from tests.support.inbound import Sink


async def _pair(folder: Path) -> tuple[ZmqTransport, ZmqTransport, list[Envelope]]:
    loop = asyncio.get_running_loop()
    addresses = {"a": f"ipc://{folder}/a.sock", "b": f"ipc://{folder}/b.sock"}
    a = ZmqTransport("a", loop, addresses["a"], {"b": addresses["b"]})
    b = ZmqTransport("b", loop, addresses["b"], {"a": addresses["a"]})
    received: list[Envelope] = []
    b.attach(Sink(receive=received.append))
    a.start()
    b.start()
    a.connect_all()
    b.connect_all()
    return a, b, received


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _tell(n: int, buffers: list[bytes]) -> Envelope:
    return Envelope(TELL, "a", "sink", None, 0, str(n).encode(), buffers, True)


def test_a_burst_of_large_buffers_leaves_in_messages_of_about_one_mib(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, received = await _pair(tmp_path)
        try:
            payloads = [bytes([n]) * (512 << 10) for n in range(8)]
            for n, payload in enumerate(payloads):  # one turn: the first leaves at once
                a.send("b", _tell(n, [payload]))
            await _until(lambda: len(received) == 8)
            assert [bytes(env.body) for env in received] == [str(n).encode() for n in range(8)]
            assert [bytes(env.buffers[0]) for env in received] == payloads
            # 1 at once, then 7 of 512 KiB in messages closed past 1 MiB: 4 more.
            assert a.stats.batches_sent == 5
            assert b.stats.batches_received == 5

            # Small messages share batches: 1 at once, then 499 in batches of 64 as
            # the queue fills (7) and the 51 left at the end of the turn (1).
            for n in range(8, 8 + 500):
                a.send("b", _tell(n, []))
            await _until(lambda: len(received) == 508)
            assert a.stats.batches_sent == 5 + 9
            assert [int(bytes(env.body)) for env in received[8:]] == list(range(8, 508))
        finally:
            a.close(linger=0.0)
            b.close(linger=0.0)

    asyncio.run(main())

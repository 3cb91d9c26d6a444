"""uvicorn's HTTP/1.1 protocol with two guards it lacks: a time limit on
the request headers, and a cap on open connections, both answered with the
service's JSON error and ``Retry-After``.

uvicorn waits for headers as long as the client likes, so a few hundred
half-open connections hold every slot (an independent client starved the
service with 300). Here a connection that has not sent its whole request
head within ``header_timeout_s`` is answered 503 and closed, and a
connection over ``max_connections`` is answered 503 as soon as it opens,
before anything is read. (uvicorn's own ``limit_concurrency`` answers
plain text without ``Retry-After``; it is left off.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def busy_response(message: str) -> bytes:
    body = json.dumps({"error": {"status": 503, "message": message}}).encode()
    head = ("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0
    max_connections: int = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        # The request cycle when the timer was armed: a new one means the
        # next request's head is in.
        self._armed_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(f"too many open connections (at most {self.max_connections}); "
                         "try again shortly")
            return
        self._arm()

    def _arm(self) -> None:
        self._armed_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._armed_cycle and self._header_timer is not None:
            self._header_timer.cancel()  # the request head is in
            self._header_timer = None

    def on_response_complete(self) -> None:
        # A kept-alive connection's next request gets the same limit (an
        # idle one is closed sooner by uvicorn's keep-alive timeout). Armed
        # against the finished cycle, before uvicorn starts a pipelined
        # next one.
        if not self.transport.is_closing() and self._header_timer is None:
            self._arm()
        super().on_response_complete()
        if self.cycle is not self._armed_cycle and self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is self._armed_cycle:
            self._refuse(f"the request headers did not arrive within "
                         f"{self.header_timeout_s:g} s")

    def _refuse(self, message: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(busy_response(message))
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """The protocol class with the service's limits."""
    return type("CalfrehabH11Protocol", (GuardedH11Protocol,), {
        "header_timeout_s": header_timeout_s, "max_connections": max_connections})

"""``sync_mode="auto"``: a sync method nobody has timed yet never holds the event loop.

A model whose first ``predict`` takes seconds used to run inline on the loop, so ``/live``
and every other call waited for it, over REST and gRPC, and a ``seldon.io/rest-timeout``
could not fire until it returned. Now each sync method starts on the thread pool, runs
inline only after a run of fast calls, and goes back to the pool after one slow inline call.

The servers run on the test's loop; the clients run on threads of their own, so what they
time is the server's answer, not the test's loop.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.components.invoke import FAST_CALLS, FORGIVEN_AFTER, Invoker
from infergraph.protocol.proto import inference_pb2 as v2
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings
from infergraph.transport.grpc.component import build_grpc_server
from infergraph.transport.rest.component import RestApp
from infergraph.wire.http1.server import HttpServer

BODY = json.dumps({"data": {"ndarray": [[1.0, 2.0]]}})
FIRST_CALL_SECONDS = 2.0
PROMPT = 0.5
"""How soon a probe must answer while the slow call runs (it took the full 2 s before)."""


class SlowFirst:
    """A model whose first ``predict`` sleeps 2 s (the work of a cold model); the rest are
    instant. ``started`` is set once that first call is under way."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.calls = 0

    def predict(self, X: Any, names: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.started.set()
            time.sleep(FIRST_CALL_SECONDS)
        return X


@asynccontextmanager
async def served(user: Any, **settings: Any) -> AsyncIterator[tuple[int, int]]:
    """REST (infergraph's HTTP server) and native gRPC for ``user``: (REST port, gRPC port)."""
    dataplane = ComponentDataPlane(user, ComponentSettings(**settings))
    await dataplane.load()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    http = HttpServer(RestApp(dataplane))
    await http.start(sock)
    grpc_server = build_grpc_server(dataplane, max_message_size=1 << 20, kind="native")
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield sock.getsockname()[1], grpc_port
    finally:
        await http.stop(grace=0)
        await grpc_server.stop(0)
        dataplane.close()


def rest(port: int, method: str, path: str, body: str | None = None) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.perf_counter()
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


async def while_first_call_runs(
    model: SlowFirst, first: Callable[[], Any], then: Callable[[], Any]
) -> tuple[Any, Any, float, bool]:
    """``first`` on a thread; once the model's slow call is under way, ``then`` on another:
    (what each returned, how long ``then`` took, whether ``first`` was still waiting)."""
    first_done = threading.Event()

    def run_first() -> Any:
        try:
            return first()
        finally:
            first_done.set()

    def run_then() -> tuple[Any, float, bool]:
        assert model.started.wait(10)
        started = time.perf_counter()
        answer = then()
        return answer, time.perf_counter() - started, not first_done.is_set()

    slow = asyncio.create_task(asyncio.to_thread(run_first))
    answer, seconds, overlapped = await asyncio.to_thread(run_then)
    return await slow, answer, seconds, overlapped


@pytest.mark.parametrize("probe", ["/live", "/health/ping"])
async def test_rest_probes_answer_while_the_first_slow_predict_runs(probe: str) -> None:
    model = SlowFirst()
    async with served(model) as (port, _):
        slow, (status, _), seconds, overlapped = await while_first_call_runs(
            model,
            lambda: rest(port, "POST", "/api/v1.0/predictions", BODY),
            lambda: rest(port, "GET", probe),
        )
        assert status == 200
        assert seconds < PROMPT, f"{probe} waited {seconds:.2f} s for the model"
        assert overlapped
        assert slow[0] == 200


async def test_another_rest_request_is_not_held_by_the_first_slow_predict() -> None:
    model = SlowFirst()
    async with served(model, threads=2) as (port, _):
        slow, (status, _), seconds, overlapped = await while_first_call_runs(
            model,
            lambda: rest(port, "POST", "/api/v1.0/predictions", BODY),
            lambda: rest(port, "POST", "/api/v1.0/predictions", BODY),
        )
        assert status == 200
        assert seconds < PROMPT, f"the second request waited {seconds:.2f} s for the first"
        assert overlapped
        assert slow[0] == 200


async def test_grpc_answers_while_the_first_slow_predict_runs() -> None:
    model = SlowFirst()
    async with served(model) as (_, grpc_port):
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            predict = pb_grpc.ModelStub(channel).Predict
            live = v2_grpc.GRPCInferenceServiceStub(channel).ServerLive
            request = pb.SeldonMessage(
                data=pb.DefaultData(tensor=pb.Tensor(shape=[1, 2], values=[1, 2]))
            )
            slow, answer, seconds, overlapped = await while_first_call_runs(
                model,
                lambda: predict(request, timeout=10),
                lambda: live(v2.ServerLiveRequest(), timeout=10),
            )
            assert answer.live
            assert seconds < PROMPT, f"ServerLive waited {seconds:.2f} s for the model"
            assert overlapped
            assert list(slow.data.tensor.values) == [1, 2]


async def test_a_timed_out_call_leaves_the_loop_free() -> None:
    model = SlowFirst()
    async with served(model, rest_timeout_ms=300) as (port, _):
        status, seconds = await asyncio.to_thread(rest, port, "POST", "/api/v1.0/predictions", BODY)
        assert status == 504
        assert seconds < FIRST_CALL_SECONDS - PROMPT  # the deadline fired, not the model
        status, seconds = await asyncio.to_thread(rest, port, "GET", "/live")
        assert (status, seconds < PROMPT) == (200, True)


# ---------------------------------------------------------------- where calls run


def _where(seconds: list[float]) -> tuple[Callable[[], bool], list[bool]]:
    """A sync method taking ``seconds.pop(0)`` (0 once empty) a call, and the list of
    whether each call ran on the loop's thread."""
    inline: list[bool] = []
    loop_thread = threading.current_thread()

    def method() -> bool:
        inline.append(threading.current_thread() is loop_thread)
        if seconds:
            time.sleep(seconds.pop(0))  # the work being measured, not synchronisation
        return True

    return method, inline


async def test_a_fast_method_starts_on_the_pool_and_moves_inline() -> None:
    invoker = Invoker(fast_calls=4)
    method, inline = _where([])
    try:
        for _ in range(6):
            assert await invoker.call(method, False)
    finally:
        invoker.close()
    assert inline == [False] * 4 + [True] * 2


async def test_one_slow_inline_call_sends_a_method_back_for_twice_as_many_calls() -> None:
    invoker = Invoker(fast_calls=2, slow_after=0.02)
    method, inline = _where([0, 0, 0.05])  # two fast on the pool, then slow inline
    try:
        for _ in range(8):
            await invoker.call(method, False)
    finally:
        invoker.close()
    assert inline == [False, False, True, False, False, False, False, True]


async def test_a_slow_call_after_a_long_fast_run_inline_is_forgiven() -> None:
    """A pause after many fast calls (a busy machine descheduled the process) is no habit:
    the method needs its first number of fast calls again, not twice as many."""
    calls = 2 + FORGIVEN_AFTER  # two on the pool, the rest inline
    invoker = Invoker(fast_calls=2, slow_after=0.02)
    method, inline = _where([0] * calls + [0.05])
    try:
        for _ in range(calls + 1 + 3):
            await invoker.call(method, False)
    finally:
        invoker.close()
    assert inline[calls - 1 :] == [True, True, False, False, True]


async def test_a_slow_call_on_the_pool_restarts_the_count() -> None:
    invoker = Invoker(fast_calls=2, slow_after=0.02)
    method, inline = _where([0, 0.05, 0, 0])
    try:
        for _ in range(5):
            await invoker.call(method, False)
    finally:
        invoker.close()
    assert inline == [False, False, False, False, True]


async def test_time_queued_for_a_busy_pool_does_not_count_as_slow() -> None:
    """Many concurrent fast calls on one thread queue for it; they are fast all the same."""
    invoker = Invoker(threads=1, fast_calls=FAST_CALLS, slow_after=0.1)
    method, inline = _where([0.01] * 16)  # 16 calls at once queue for 160 ms in all
    try:
        await asyncio.gather(*(invoker.call(method, False) for _ in range(16)))
        assert not invoker.on_thread(method)
    finally:
        invoker.close()
    assert not any(inline)


async def test_a_call_cancelled_on_the_pool_counts_as_slow() -> None:
    invoker = Invoker(fast_calls=2, slow_after=1.0)
    method, inline = _where([0, 0.3])
    try:
        await invoker.call(method, False)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(invoker.call(method, False), 0.05)
        await invoker.call(method, False)
        assert invoker.on_thread(method)  # two fast calls, but not in a row
        await invoker.call(method, False)
        assert not invoker.on_thread(method)
    finally:
        invoker.close()
    assert not any(inline)


async def test_a_method_moves_inline_only_once_none_of_its_calls_is_on_a_thread() -> None:
    """A model need not be thread-safe: a call inline never overlaps one on a thread."""
    release = threading.Event()
    loop_thread = threading.current_thread()
    inline: list[bool] = []

    def method(hold: bool) -> None:
        inline.append(threading.current_thread() is loop_thread)
        if hold:
            assert release.wait(10)

    invoker = Invoker(threads=2, fast_calls=2, slow_after=5.0)
    try:
        held = asyncio.create_task(invoker.call(method, False, True))
        while not inline:  # the held call has its thread
            await asyncio.sleep(0)
        await invoker.call(method, False, False)
        await invoker.call(method, False, False)  # two fast in a row, but one still runs
        await invoker.call(method, False, False)
        release.set()
        await held
        await invoker.call(method, False, False)
    finally:
        release.set()
        invoker.close()
    assert inline == [False, False, False, False, True]


async def test_a_call_cancelled_while_queued_holds_nothing() -> None:
    """Cancelled before a thread took it, a call never runs and is not counted running."""
    release = threading.Event()
    ran: list[str] = []

    def method(name: str) -> None:
        ran.append(name)
        if name == "held":
            assert release.wait(10)

    invoker = Invoker(threads=1, fast_calls=1, slow_after=5.0)
    try:
        held = asyncio.create_task(invoker.call(method, False, "held"))
        while not ran:
            await asyncio.sleep(0)
        queued = asyncio.create_task(invoker.call(method, False, "queued"))
        await asyncio.sleep(0)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await held
        assert not invoker.on_thread(method)  # nothing of it runs on a thread any more
    finally:
        release.set()
        invoker.close()
    assert ran == ["held"]


@pytest.mark.parametrize(("mode", "on_loop"), [("inline", True), ("thread", False)])
async def test_a_forced_mode_never_changes(mode: str, on_loop: bool) -> None:
    invoker = Invoker(mode=mode, slow_after=0.0)
    method, inline = _where([])
    try:
        for _ in range(FAST_CALLS + 2):
            await invoker.call(method, False)
    finally:
        invoker.close()
    assert inline == [on_loop] * (FAST_CALLS + 2)

"""``build_grpc_server`` itself, served on the test's own event loop with a grpc.aio client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.observability.component_metrics import REQUESTS_METRIC
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings
from infergraph.transport.grpc.component import SERVICE_NAMES, build_grpc_server


class SlowLoad:
    def __init__(self) -> None:
        self.loads = 0

    async def load(self) -> None:
        self.loads += 1
        await asyncio.sleep(0)  # let the other calls queue up on the load lock

    def predict(self, X: Any, names: list[str]) -> Any:
        assert self.loads == 1
        return X


class Tagging:
    def predict(self, X: Any, names: list[str]) -> Any:
        return X


@asynccontextmanager
async def serving(dataplane: ComponentDataPlane, **kwargs: Any) -> AsyncIterator[grpc.aio.Channel]:
    kwargs.setdefault("max_message_size", 1 << 20)
    server = build_grpc_server(dataplane, **kwargs)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(0)
        dataplane.close()


def request() -> pb.SeldonMessage:
    return pb.SeldonMessage(data=pb.DefaultData(tensor=pb.Tensor(shape=[1], values=[4.0])))


async def test_loads_once_on_first_call() -> None:
    user = SlowLoad()
    dataplane = ComponentDataPlane(user, ComponentSettings(sync_mode="inline"))
    assert not dataplane.ready
    async with serving(dataplane) as channel:
        stub = pb_grpc.ModelStub(channel)
        responses = await asyncio.gather(*(stub.Predict(request()) for _ in range(5)))
    assert [list(r.data.tensor.values) for r in responses] == [[4.0]] * 5
    assert user.loads == 1


async def test_unexpected_errors_are_internal_with_the_type() -> None:
    dataplane = ComponentDataPlane(Tagging())

    async def broken(request: Any, wire: str = "json") -> Any:
        raise KeyError("no tags today")  # a bug outside the user's code

    dataplane.predict = broken  # type: ignore[method-assign]
    async with serving(dataplane) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.SeldonStub(channel).Predict(request())
    assert info.value.code() is grpc.StatusCode.INTERNAL
    assert info.value.details() == "KeyError: 'no tags today'"
    codes = [
        dict(labels)["code"]
        for (name, labels) in dataplane.registry.histograms
        if name == REQUESTS_METRIC
    ]
    assert codes == ["INTERNAL"]


async def test_reflection_can_be_turned_off() -> None:
    async with serving(ComponentDataPlane(Tagging()), reflection=False) as channel:
        # a unary call to the reflection service's path: the server must not know it
        call = channel.unary_unary(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(reflection_pb2.ServerReflectionRequest(list_services=""))
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_reflection_lists_every_service() -> None:
    async with serving(ComponentDataPlane(Tagging())) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        calls = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name async for r in calls for s in r.list_services_response.service}
    assert names == {
        *SERVICE_NAMES,
        "inference.GRPCInferenceService",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_workers_can_share_a_port() -> None:
    first = build_grpc_server(ComponentDataPlane(Tagging()), max_message_size=1024)
    second = build_grpc_server(ComponentDataPlane(Tagging()), max_message_size=1024)
    port = first.add_insecure_port("127.0.0.1:0")
    assert second.add_insecure_port(f"127.0.0.1:{port}") == port  # SO_REUSEPORT
    await first.start()
    await second.start()
    await first.stop(0)
    await second.stop(0)


async def test_extra_options_are_applied() -> None:
    dataplane = ComponentDataPlane(Tagging())
    # a later max_receive_message_length overrides max_message_size
    options = [("grpc.max_receive_message_length", 64)]
    async with serving(dataplane, options=options) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.ModelStub(channel).Predict(pb.SeldonMessage(strData="x" * 128))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "kind", [pytest.param("threads", id="threads"), pytest.param("asyncio", id="asyncio")]
)
async def test_both_grpc_servers_serve_seldon_and_v2(kind: str) -> None:
    from infergraph.protocol.proto import inference_pb2, inference_pb2_grpc

    async with serving(ComponentDataPlane(Tagging()), kind=kind) as channel:
        answer = await pb_grpc.ModelStub(channel).Predict(request())
        assert answer.data.tensor.values == [4.0]
        v2 = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        infer = inference_pb2.ModelInferRequest(model_name="Tagging")
        infer.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents.append(4.0)
        out = await v2.ModelInfer(infer)
        assert list(out.outputs[0].contents.fp64_contents) == [4.0]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await v2.ModelInfer(inference_pb2.ModelInferRequest(model_name="nope"))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_an_unknown_grpc_server_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="threads, asyncio"):
        build_grpc_server(ComponentDataPlane(Tagging()), max_message_size=1024, kind="gevent")

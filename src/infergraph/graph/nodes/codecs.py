"""The seam between a node client and its hop codec.

A client of a node in other processes does two jobs: the replicas, their health, the retries
and the wire (:class:`~infergraph.graph.nodes.rest_client.RestNodeClient`,
:class:`~infergraph.graph.nodes.grpc_client.GrpcNodeClient`), and the hop's protocol: how a
call's :class:`~infergraph.protocol.message.Message` becomes the bytes of Seldon JSON,
Seldon protobuf or binary V2, and how the node's answer becomes a Message again. The second
job is a codec, handed to the client when it is built, so one REST client and one gRPC
client serve every protocol:

- over REST, a :class:`RestCodec`: Seldon JSON
  (:class:`~infergraph.graph.nodes.seldon_codecs.SeldonJsonCodec`) or binary V2
  (:class:`~infergraph.graph.nodes.v2_codecs.V2RestCodec`);
- over gRPC, a :class:`GrpcCodec`: Seldon protobuf
  (:class:`~infergraph.graph.nodes.seldon_codecs.SeldonProtoCodec`) or V2
  (:class:`~infergraph.graph.nodes.v2_codecs.V2GrpcCodec`).

A codec encodes a call once, before a replica is chosen, so a call sent again to another
replica is not encoded twice; what it encodes is a request the client sends as it is (a
path, a body, the headers), which also tells the codec how to read the answer. Codecs are
pure: no I/O, no state per call; a node's error answer is raised as the error it stands for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Generic, TypeVar

from infergraph.protocol.message import Feedback, Message

__all__ = ["GrpcCodec", "GrpcRequest", "NodeCodec", "RestCodec", "RestRequest"]

R = TypeVar("R")

RestRequest = tuple[str, bytes, Mapping[str, str]]
"""A REST hop: the path POSTed to, the body, its headers."""
GrpcRequest = tuple[str, bytes]
"""A gRPC hop: the method's path (``/package.Service/Method``) and the serialised request."""


class NodeCodec(ABC, Generic[R]):
    """What every codec encodes: a node method's request, a combiner's inputs, feedback."""

    @abstractmethod
    def call(self, method: str, message: Message) -> R:
        """``predict``, ``transform_input``, ``transform_output`` or ``route``."""

    @abstractmethod
    def batch(self, messages: list[Message]) -> R:
        """``aggregate``: a combiner's inputs."""

    @abstractmethod
    def feedback(self, feedback: Feedback) -> R:
        """``send_feedback``."""


class RestCodec(NodeCodec[RestRequest]):
    """A protocol over REST."""

    @abstractmethod
    def answer(
        self, request: RestRequest, status: int, body: bytes, header_length: int | None
    ) -> Message:
        """The node's answer to ``request`` (its status, body and
        ``Inference-Header-Content-Length``); a non-2xx status raises the error it stands for,
        an answer that cannot be read :class:`~infergraph.errors.UserCodeError`."""


class GrpcCodec(NodeCodec[GrpcRequest]):
    """A protocol over gRPC."""

    @abstractmethod
    def answer(self, request: GrpcRequest, body: bytes) -> Message:
        """The node's serialised answer to ``request``; one that cannot be read raises
        :class:`~infergraph.errors.UserCodeError`. Error statuses never get here: they are
        the wire's (:mod:`~infergraph.graph.nodes.wire_errors`)."""

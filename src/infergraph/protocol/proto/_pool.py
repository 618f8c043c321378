"""infergraph's own protobuf descriptor pool, so its messages never clash with other libraries'.

TensorFlow, seldon-core, tritonclient, KServe and MLServer each register messages named
``tensorflow.*``, ``seldon.protos.*`` or ``inference.*`` in protobuf's default pool, and a
second registration of a full name fails at import. infergraph keeps the canonical full names
(gRPC method paths, reflection and every client see ``seldon.protos.Seldon`` and
``inference.GRPCInferenceService``) but adds its files to this pool only.

Only APIs that protobuf has had since 4.21 are used here, so the generated modules load on
every runtime from that release to the newest: no gencode version check ties them to the
``protoc`` that produced them. Messages of another pool with the same full name (a user's
``seldon_core`` ``SeldonMessage``, tritonclient's ``ModelInferRequest``) are converted with
:func:`coerce`, through their wire form.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import any_pb2, descriptor_pool, empty_pb2, message, struct_pb2
from google.protobuf import message_factory as _factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FileDescriptor
from google.protobuf.internal import enum_type_wrapper

__all__ = [
    "POOL",
    "add_file",
    "coerce",
    "enum_type",
    "include",
    "message_class",
    "named",
    "same_type",
    "serialize",
]

POOL = descriptor_pool.DescriptorPool()
"""The pool every infergraph ``.proto`` file is added to, never protobuf's default one."""

# the well-known types our files import; their descriptors are copied, not shared, because a
# file's dependencies must live in the file's own pool
for _module in (any_pb2, empty_pb2, struct_pb2):
    POOL.AddSerializedFile(_module.DESCRIPTOR.serialized_pb)

M = TypeVar("M", bound=message.Message)


def add_file(name: str, serialized: bytes) -> FileDescriptor:
    """Add one serialized ``FileDescriptorProto`` (its dependencies first) and return it."""
    POOL.AddSerializedFile(serialized)
    return POOL.FindFileByName(name)


def include(file: FileDescriptor) -> None:
    """Copy another pool's file (and what it imports) into ours, once: gRPC reflection lists
    its own service beside ours, so its descriptors must be found here too."""
    try:
        POOL.FindFileByName(file.name)
    except KeyError:
        for dependency in file.dependencies:
            include(dependency)
        POOL.AddSerializedFile(file.serialized_pb)


def message_class(file: FileDescriptor, name: str) -> Any:
    """The message class of a top-level message of ``file``; nested ones are its attributes."""
    cls = _class_for(file.message_types_by_name[name])
    cls.__module__ = file.name.removesuffix(".proto").replace("/", ".") + "_pb2"  # for pickle
    return cls


def named(full_name: str) -> Any:
    """The message class of a full name in the pool (``google.protobuf.Empty``, ...)."""
    return _class_for(POOL.FindMessageTypeByName(full_name))


def serialize(msg: message.Message) -> bytes:
    """The stubs' request serializer: any message with the right wire form, whatever its pool."""
    return msg.SerializeToString()


def enum_type(file: FileDescriptor, name: str) -> enum_type_wrapper.EnumTypeWrapper:
    """A top-level enum of ``file``, as the generated ``Name.Value('X')`` helper."""
    descriptor: EnumDescriptor = file.enum_types_by_name[name]
    return enum_type_wrapper.EnumTypeWrapper(descriptor)


def _class_for(descriptor: Descriptor) -> Any:
    get = getattr(_factory, "GetMessageClass", None)
    if get is not None:
        return get(descriptor)
    return _factory.MessageFactory(POOL).GetPrototype(descriptor)  # protobuf before 4.22


def same_type(msg: Any, cls: type[message.Message]) -> bool:
    """Whether ``msg`` is a ``cls`` message, from infergraph's pool or another one."""
    return isinstance(msg, message.Message) and msg.DESCRIPTOR.full_name == cls.DESCRIPTOR.full_name


def coerce(msg: Any, cls: type[M]) -> M:
    """``msg`` as an instance of ``cls``: itself, or, for a message of another pool with the
    same full name, a copy through the wire form. Anything else is a ``TypeError``."""
    if isinstance(msg, cls):
        return msg
    expected = cls.DESCRIPTOR.full_name
    if isinstance(msg, message.Message) and msg.DESCRIPTOR.full_name == expected:
        return cls.FromString(msg.SerializeToString())
    raise TypeError(f"expected a protobuf {expected} message, got {type(msg).__name__}")

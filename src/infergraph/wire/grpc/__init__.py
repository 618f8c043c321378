"""gRPC over HTTP/2 (PROTOCOL-HTTP2.md): message framing and the ``grpc-message`` encoding."""

"""The gRPC face of a component and of a graph: Seldon's ``seldon.protos`` services
(:mod:`.component`, :mod:`.graph`) beside the Open Inference Protocol's
``inference.GRPCInferenceService`` (:mod:`.v2`) on one port, with reflection. What they
share (:mod:`.server`): the server, infergraph's own (``infergraph.wire.grpc.server``) or
grpcio's, and the unary handler that maps errors to status codes and records metrics; TLS
on the port (:mod:`.tls`)."""

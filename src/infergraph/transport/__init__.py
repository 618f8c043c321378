"""The transports: the REST face (:mod:`.rest`) and the gRPC face (:mod:`.grpc`), over the
data planes.

``rest/`` holds the ASGI apps of a component and of a graph, their routes (Seldon's, the
Open Inference Protocol's, the dashboard's) and the HTTP/1.1 server they are served on (the
wire's, plus the access log). ``grpc/`` holds the Seldon and V2 gRPC services of a
component and of a graph, and the server they run on (the wire's, or grpcio's). What both
faces share stays here: bearer-token authentication (:mod:`.auth`), the gateway's ingress
paths and routing metadata (:mod:`.ingress`) and the check of a client's puid
(:mod:`.puid`); request bodies are inflated by ``infergraph.wire.content_encoding``.
"""

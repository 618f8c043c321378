"""The transports: the REST face (:mod:`.rest`) and the gRPC servers, over the data planes.

``rest/`` holds the ASGI apps of a component and of a graph, their routes (Seldon's, the
Open Inference Protocol's, the dashboard's) and the HTTP/1.1 server they are served on (the
wire's, plus the access log). The gRPC servers are the ``grpc_*``, ``graph_grpc`` and
``v2_grpc`` modules. What both faces share stays here: bearer-token authentication
(:mod:`.auth`), the gateway's ingress paths and routing metadata (:mod:`.ingress`), the
decompression of request bodies (:mod:`.content_encoding`) and the check of a client's puid
(:mod:`.puid`).
"""

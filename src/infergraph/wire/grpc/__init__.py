"""gRPC over HTTP/2 (``PROTOCOL-HTTP2.md``), both ends, on the shared HTTP/2 state machine
(:mod:`infergraph.wire.http2`):

- what both ends share: message framing (:mod:`.messages`), the call's headers, deadline
  and trailers (:mod:`.headers`), its end status (:mod:`.status`);
- infergraph's own server (:mod:`.server`, grpcio's interface): its connections
  (:mod:`.server_connection`), streams (:mod:`.server_stream`), calls
  (:mod:`.server_calls`) and the ``context`` a handler gets (:mod:`.call`);
- the node client (:mod:`.client`) and its connections (:mod:`.connection`).
"""

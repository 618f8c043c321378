"""The REST face: the ASGI apps of a component (:mod:`.component`) and of a graph
(:mod:`.graph`) on their shared base (:mod:`.asgi`), their routes (:mod:`.v2`,
:mod:`.dashboard`, :mod:`.openapi`), and infergraph's HTTP/1.1 server with the access log
(:mod:`.server`, :mod:`.access_log`)."""

"""HTTP/1.1 as infergraph speaks it itself: the node client (:mod:`.client`) and the
limits and refusals of its server (:mod:`.guard`)."""

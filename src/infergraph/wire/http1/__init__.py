"""HTTP/1.1 as infergraph speaks it itself: the node client (:mod:`.client`)."""

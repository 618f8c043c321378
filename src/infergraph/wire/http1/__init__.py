"""HTTP/1.1 as infergraph speaks it itself: the server (:mod:`.server`), its limits and
refusals (:mod:`.guard`), and the node client (:mod:`.client`)."""

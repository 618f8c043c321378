"""The test suite: its folders mirror src/infergraph's packages."""

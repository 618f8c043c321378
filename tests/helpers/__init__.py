"""What the tests share: processes, servers, fixtures' data, certificates."""

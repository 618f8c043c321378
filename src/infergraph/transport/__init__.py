"""REST (ASGI) and gRPC servers, and the one table from error codes to status."""

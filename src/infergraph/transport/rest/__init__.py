"""The REST face: the ASGI apps, their routes, and the HTTP/1.1 server they are served on."""

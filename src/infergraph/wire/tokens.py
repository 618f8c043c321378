"""Bearer tokens kept in a file: the ones a server accepts, the one a client sends.

The file holds one token a line (blank lines and surrounding spaces ignored), so that a
token can be rotated without a moment where no token works: add the new one, move the
clients, remove the old one. The file is read again when it changes (looked at once a
second at most, as calls come); a new file that cannot be read, or holds no token, is
logged and the tokens before it are kept. Tokens are compared in constant time
(:func:`hmac.compare_digest`), each against every token of the file.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable

__all__ = ["BearerTokens"]

log = logging.getLogger(__name__)

CHECK_S = 1.0
"""The file is looked at (``stat``) at most this often."""


def _read(path: str) -> tuple[bytes, ...]:
    """The tokens of ``path``; ValueError naming the file when it has none or cannot be read."""
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from None
    tokens = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not tokens:
        raise ValueError(f"the token file {path} holds no token (one token a line)")
    if any(b" " in t or b"\t" in t for t in tokens):
        raise ValueError(f"the token file {path} has a line with spaces: one token a line")
    return tokens


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class BearerTokens:
    """The tokens of one file. Raises ValueError at construction when the file cannot be
    read or holds no token: a start-up error that names it."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._stamp = _stamp(path)
        self._tokens = _read(path)
        self._checked = clock()

    def _current(self) -> tuple[bytes, ...]:
        now = self.clock()
        if now - self._checked >= CHECK_S:
            self._checked = now
            stamp = _stamp(self.path)
            if stamp != self._stamp and stamp is not None:
                self._stamp = stamp
                try:
                    self._tokens = _read(self.path)
                except ValueError as exc:
                    log.error("auth: keeping the tokens in use: %s", exc)
                else:
                    log.info("auth: read %d token(s) from %s", len(self._tokens), self.path)
        return self._tokens

    def accepts(self, authorization: str | bytes | None) -> bool:
        """Whether an ``Authorization`` value (``Bearer <token>``) carries a token of the
        file."""
        if not authorization:
            return False
        value = authorization.encode("latin-1") if isinstance(authorization, str) else authorization
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        found = False
        for known in self._current():  # every one compared: the time says nothing of which
            found |= hmac.compare_digest(known, token)
        return found

    def authorization(self) -> str:
        """What a client sends: ``Bearer`` and the file's first token."""
        return "Bearer " + self._current()[0].decode("latin-1")

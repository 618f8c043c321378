"""Where bandit routers keep their counters: in this process, or in Redis for all replicas.

A bandit learns only from the feedback it sees. With several replicas (or worker processes)
behind one router node, each would learn from a fraction of the feedback and they would
disagree, so the counters live in a store that every replica reads before each route and
updates atomically on each feedback. Seldon's ``ThompsonSamplingPersistent`` tried this with
a read-then-``LSET`` update that lost concurrent updates (its own TODO says so); here every
update is one atomic transaction, so no feedback is ever lost.

The store keeps, per key: successes and failures per branch, the number of feedback calls,
and the sum of the rewards received, so that tests and operators can check that what was
recorded adds up exactly to what was sent. Each algorithm derives its own view from the same
counters: tries = successes + failures; Beta(1 + successes, 1 + failures).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from infergraph.errors import LoadError, NotReady

if TYPE_CHECKING:
    import redis

__all__ = [
    "BanditCounts",
    "BanditStore",
    "MemoryStore",
    "RedisStore",
    "connect_redis",
    "redact_url",
    "seldon_key",
]

_REWARD = "reward"
_FEEDBACK = "feedback"
_SUCCESSES = "successes:"
_FAILURES = "failures:"


def seldon_key(deployment: str, predictor: str, unit: str, suffix: str = "-beta-params") -> str:
    """The Redis key Seldon's persistent Thompson router used for one router node.

    ``seldon_<deployment>_<predictor>_<unit><suffix>``: one key per graph node, so routers of
    different deployments, predictors or nodes never share counters by accident.
    """
    return f"seldon_{deployment}_{predictor}_{unit}{suffix}"


@dataclass(frozen=True, slots=True)
class BanditCounts:
    """An immutable snapshot of one key's counters, taken atomically."""

    successes: tuple[int, ...]
    failures: tuple[int, ...]
    total_reward: float = 0.0
    feedback_count: int = 0

    @property
    def tries(self) -> tuple[int, ...]:
        return tuple(s + f for s, f in zip(self.successes, self.failures, strict=True))

    @property
    def branches(self) -> int:
        """How many branches have counters (at least the ``n_branches`` asked for)."""
        return len(self.successes)

    def fit(self, n_branches: int) -> BanditCounts:
        """Exactly ``n_branches`` branches: untouched ones count zero, extra ones are dropped."""
        if self.branches == n_branches:
            return self
        pad = (0,) * max(0, n_branches - self.branches)
        return BanditCounts(
            (self.successes + pad)[:n_branches],
            (self.failures + pad)[:n_branches],
            self.total_reward,
            self.feedback_count,
        )


class BanditStore(Protocol):
    """Counters shared by every router instance that uses the same key.

    ``read`` and ``add`` each see or make one atomic change; ``add`` returns the snapshot
    right after its own update, so a router can refresh its view without a second read.
    """

    def read(self, key: str, n_branches: int) -> BanditCounts: ...

    def add(
        self, key: str, branch: int, successes: int, failures: int, reward: float
    ) -> BanditCounts: ...

    def close(self) -> None: ...


def _snapshot(fields: dict[str, float], n_branches: int) -> BanditCounts:
    """Build counts from ``successes:<i>``/``failures:<i>``/``reward``/``feedback`` fields."""
    size = n_branches
    for name in fields:
        if name.startswith((_SUCCESSES, _FAILURES)):
            size = max(size, int(name.partition(":")[2]) + 1)
    return BanditCounts(
        successes=tuple(int(fields.get(f"{_SUCCESSES}{i}", 0)) for i in range(size)),
        failures=tuple(int(fields.get(f"{_FAILURES}{i}", 0)) for i in range(size)),
        total_reward=float(fields.get(_REWARD, 0.0)),
        feedback_count=int(fields.get(_FEEDBACK, 0)),
    )


class MemoryStore:
    """Counters in this process: the default, and enough for a single replica.

    Sync routers run in a thread pool, so updates take a lock to stay atomic.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, float]] = {}

    def read(self, key: str, n_branches: int) -> BanditCounts:
        with self._lock:
            return _snapshot(dict(self._data.get(key, {})), n_branches)

    def add(
        self, key: str, branch: int, successes: int, failures: int, reward: float
    ) -> BanditCounts:
        with self._lock:
            fields = self._data.setdefault(key, {})
            for name, step in (
                (f"{_SUCCESSES}{branch}", successes),
                (f"{_FAILURES}{branch}", failures),
                (_FEEDBACK, 1),
                (_REWARD, reward),
            ):
                fields[name] = fields.get(name, 0) + step
            return _snapshot(dict(fields), branch + 1)

    def close(self) -> None:
        """Nothing to release; present so that every store can be closed the same way."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced, fit for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect_redis(
    url: str,
    *,
    timeout_s: float = 5.0,
    client: redis.Redis | None = None,
    purpose: str = "bandit state",
) -> redis.Redis:
    """A ``redis.Redis`` for ``url`` that answered a PING, or LoadError naming the URL
    (password hidden) and ``purpose``. ``client``, when given, is checked instead."""
    shown = redact_url(url)
    try:
        import redis
    except ImportError as exc:
        raise LoadError(
            f"Redis at {shown} for {purpose} needs redis-py: pip install 'infergraph[redis]'"
        ) from exc
    try:
        connected = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        connected.ping()
    except (redis.RedisError, ValueError) as exc:
        raise LoadError(
            f"Cannot reach Redis at {shown} for {purpose}: {exc}. Check the URL and "
            "that the server is running and reachable from this replica."
        ) from exc
    return connected


class RedisStore:
    """Counters in one Redis hash per key, shared by every replica and process.

    Each feedback is one ``MULTI``/``EXEC`` transaction of ``HINCRBY``/``HINCRBYFLOAT`` plus
    an ``HGETALL``: Redis applies it atomically, so concurrent feedback from any number of
    processes adds up exactly. Each route reads the hash with one ``HGETALL`` (a few fields),
    so every replica routes on every replica's feedback.

    The value is a hash, not the list of Beta parameters Seldon's ``ThompsonSamplingPersistent``
    wrote (that router could not start, so no such state exists in practice); routers read
    their key at construction, so a key holding another type fails at start-up.
    ``client`` takes an existing ``redis.Redis`` (connection settings are then its own).
    """

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, client: redis.Redis | None = None
    ) -> None:
        self.url = redact_url(url)
        self._client = connect_redis(
            url, timeout_s=timeout_s, client=client, purpose="bandit state"
        )
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._timeouts: tuple[type[Exception], ...] = (redis.TimeoutError,)

    @property
    def client(self) -> redis.Redis:
        """The connected client, for other state of the same replica that lives in this Redis
        (the routings kept for feedback by request id share its connection pool)."""
        return self._client

    def read(self, key: str, n_branches: int) -> BanditCounts:
        try:
            return self._read(key, n_branches)
        except self._errors as exc:
            raise NotReady(f"Bandit state in Redis at {self.url} is unavailable: {exc}") from exc

    def add(
        self, key: str, branch: int, successes: int, failures: int, reward: float
    ) -> BanditCounts:
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hincrby(key, f"{_SUCCESSES}{branch}", successes)
            pipe.hincrby(key, f"{_FAILURES}{branch}", failures)
            pipe.hincrby(key, _FEEDBACK, 1)
            pipe.hincrbyfloat(key, _REWARD, reward)
            pipe.hgetall(key)
            *_, raw = pipe.execute()
        except self._timeouts as exc:
            # the transaction was sent: Redis may still apply it, so say so and let the
            # client decide (a blind resend could count the reward twice)
            raise NotReady(
                f"Feedback may or may not have been recorded: Redis at {self.url} did not "
                f"answer in time ({exc}); check the bandit state before sending it again"
            ) from exc
        except self._errors as exc:
            raise NotReady(
                f"Feedback not recorded: bandit state in Redis at {self.url} is unavailable: {exc}"
            ) from exc
        return _snapshot(_decode(raw), branch + 1)

    def close(self) -> None:
        self._client.close()

    def _read(self, key: str, n_branches: int) -> BanditCounts:
        return _snapshot(_decode(self._client.hgetall(key)), n_branches)


def _decode(raw: Any) -> dict[str, float]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): float(v) for k, v in dict(raw).items()
    }

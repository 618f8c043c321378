"""What each recent prediction's routing was, by request id, for feedback that names only the id.

Feedback reaches the routers and models that served a request by replaying the response's
``meta.routing``. V2 clients never see ``meta``, and many Seldon clients keep only the puid,
so after each prediction the data plane records, under the request's ids (its puid, and the
V2 request ``id`` when the client gave one), the predictor that answered with its routing and
request path. A feedback that carries an id and no routing is then resolved here.

Two stores, one protocol:

- :class:`MemoryRoutingStore`, the default: bounded by count and by age, O(1) per request
  (a dict, and a queue whose order is also expiry order; identical routings are shared, so
  an entry costs little more than its id);
- :class:`RedisRoutingStore`, with ``--redis-url``: one key per id with a TTL, so that any
  replica can resolve a feedback for a prediction another replica answered. It shares the
  bandit store's connection.

Both are used from the event loop only; the Redis one moves its calls to a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from infergraph.errors import NotFound, NotReady

if TYPE_CHECKING:
    import redis

__all__ = [
    "MAX_ID_LENGTH",
    "MemoryRoutingStore",
    "RedisRoutingStore",
    "RoutingStore",
    "Served",
    "unknown_id",
]

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 256
"""Longer ids are not recorded: a request id is a key, not a payload."""
_MAX_SHARED = 4096  # distinct (predictor, routing, request path) values shared in memory
_RECENT = 4  # of them compared before hashing


@dataclass(frozen=True, slots=True)
class Served:
    """Who answered one request: enough to replay its feedback."""

    predictor: str
    routing: Mapping[str, int]
    request_path: Mapping[str, str]


_Entry = tuple[float, Served]  # (expires at, by the store's clock; who answered)


class RoutingStore(Protocol):
    """Recent predictions' routings by request id."""

    ttl_s: float

    def limits(self) -> str:
        """How long (and how many) routings are kept, in words, for error messages."""
        ...

    async def record(
        self,
        ids: Sequence[str],
        predictor: str,
        routing: Mapping[str, int],
        request_path: Mapping[str, str],
    ) -> None: ...

    async def lookup(self, request_id: str) -> Served | None: ...

    def close(self) -> None: ...


def unknown_id(request_id: str, store: RoutingStore) -> NotFound:
    """The error for a feedback whose id has no routing (never seen, evicted or expired)."""
    shown = request_id if len(request_id) <= 80 else request_id[:77] + "..."
    return NotFound(
        f"feedback: request id {shown!r} is unknown or expired: no prediction with this "
        f"puid or V2 request id is remembered ({store.limits()}). Send the feedback "
        "sooner, or send the response's meta.routing with it; no node was given the reward"
    )


def _recordable(ids: Sequence[str]) -> list[str]:
    return [i for i in dict.fromkeys(ids) if i and len(i) <= MAX_ID_LENGTH]


class MemoryRoutingStore:
    """Routings in this process: the last ``capacity`` predictions, for ``ttl_s`` seconds.

    A dict finds an id; a queue holds the entries in the order they were recorded, which,
    with one TTL and a monotonic clock, is also the order they expire in. Each record drops
    what fell out of the bounds from the front of the queue, so every operation is O(1).
    An id recorded again gets a fresh entry; its older one in the queue is skipped when it
    comes out. ``clock`` is injected for tests.
    """

    def __init__(
        self,
        capacity: int,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("MemoryRoutingStore needs capacity >= 1 and ttl_s > 0")
        self.capacity = capacity
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._by_id: dict[str, _Entry] = {}
        self._queue: deque[tuple[str, _Entry]] = deque()
        self._shared: dict[tuple[Any, ...], Served] = {}
        self._recent: deque[Served] = deque(maxlen=_RECENT)

    def __len__(self) -> int:
        return len(self._by_id)

    def limits(self) -> str:
        return (
            f"this server keeps the routing of its last {self.capacity} predictions "
            f"for {self.ttl_s:g} s"
        )

    async def record(
        self,
        ids: Sequence[str],
        predictor: str,
        routing: Mapping[str, int],
        request_path: Mapping[str, str],
    ) -> None:
        self.add(ids, predictor, routing, request_path)

    def add(
        self,
        ids: Sequence[str],
        predictor: str,
        routing: Mapping[str, int],
        request_path: Mapping[str, str],
    ) -> None:
        """:meth:`record`, without the coroutine."""
        now = self._clock()
        entry = (now + self.ttl_s, self._share(predictor, routing, request_path))
        by_id, queue = self._by_id, self._queue
        for request_id in ids:
            if request_id and len(request_id) <= MAX_ID_LENGTH:
                by_id[request_id] = entry
                queue.append((request_id, entry))
        while len(queue) > self.capacity or (queue and queue[0][1][0] <= now):
            old, was = queue.popleft()
            if by_id.get(old) is was:  # not recorded again since
                del by_id[old]

    async def lookup(self, request_id: str) -> Served | None:
        entry = self._by_id.get(request_id)
        if entry is None or entry[0] <= self._clock():
            return None  # an expired entry leaves with the next record
        return entry[1]

    def close(self) -> None:
        self._by_id.clear()
        self._queue.clear()
        self._shared.clear()
        self._recent.clear()

    def _share(
        self, predictor: str, routing: Mapping[str, int], request_path: Mapping[str, str]
    ) -> Served:
        """One :class:`Served` per distinct value: a graph has few distinct routings, and an
        entry then costs little more than its id (about 270 bytes with a uuid4 puid).

        The last few values are compared first (two small dicts: cheaper than hashing them).
        """
        for served in self._recent:
            if (
                served.routing == routing
                and served.request_path == request_path
                and served.predictor == predictor
            ):
                return served
        key = (predictor, *routing.items(), None, *request_path.items())
        found = self._shared.get(key)
        if found is None:
            if len(self._shared) >= _MAX_SHARED:
                self._shared.clear()
            found = self._shared[key] = Served(predictor, dict(routing), dict(request_path))
        self._recent.appendleft(found)
        return found


class RedisRoutingStore:
    """Routings in Redis, one key per request id with a TTL, readable by every replica.

    ``client`` is the connected client of the bandit store (see
    :func:`infergraph.routers.state.connect_redis`). A failed write is logged and the
    prediction still answered (its feedback by id will be unknown); a failed read is a 503.
    """

    def __init__(self, client: redis.Redis, *, deployment: str, ttl_s: float, url: str) -> None:
        if ttl_s <= 0:
            raise ValueError("RedisRoutingStore needs ttl_s > 0")
        import redis as redis_module

        self._client = client
        self._errors: tuple[type[Exception], ...] = (redis_module.RedisError,)
        self.prefix = f"infergraph_{deployment}_puid_"
        self.ttl_s = float(ttl_s)
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self.url = url
        self._failing = False

    def key(self, request_id: str) -> str:
        return self.prefix + request_id

    def limits(self) -> str:
        return f"Redis at {self.url} keeps the routing of each prediction for {self.ttl_s:g} s"

    async def record(
        self,
        ids: Sequence[str],
        predictor: str,
        routing: Mapping[str, int],
        request_path: Mapping[str, str],
    ) -> None:
        keys = [self.key(i) for i in _recordable(ids)]
        if not keys:
            return
        value = orjson.dumps({"p": predictor, "r": routing, "q": request_path})
        try:
            await asyncio.to_thread(self._write, keys, value)
        except self._errors as exc:
            if not self._failing:
                log.warning(
                    "routings for feedback by request id are not being recorded: Redis at %s "
                    "is unavailable: %s",
                    self.url,
                    exc,
                )
            self._failing = True
            return
        self._failing = False

    def _write(self, keys: list[str], value: bytes) -> None:
        if len(keys) == 1:
            self._client.set(keys[0], value, px=self._ttl_ms)
            return
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, value, px=self._ttl_ms)
        pipe.execute()

    async def lookup(self, request_id: str) -> Served | None:
        if not request_id or len(request_id) > MAX_ID_LENGTH:
            return None
        try:
            raw = await asyncio.to_thread(self._client.get, self.key(request_id))
        except self._errors as exc:
            raise NotReady(
                f"feedback by request id: cannot read its routing from Redis at {self.url}: {exc}"
            ) from exc
        return None if raw is None else _decode(raw, self.key(request_id))

    def close(self) -> None:
        """The connection belongs to the bandit store, which closes it."""


def _decode(raw: Any, key: str) -> Served | None:
    try:
        value = orjson.loads(raw)
        predictor, routing, path = value["p"], value["r"], value["q"]
        ok = (
            isinstance(predictor, str)
            and isinstance(routing, dict)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in routing.values())
            and isinstance(path, dict)
            and all(isinstance(v, str) for v in path.values())
        )
    except (orjson.JSONDecodeError, TypeError, KeyError):
        ok = False
    if not ok:
        log.warning("ignoring Redis key %s: not a routing infergraph recorded", key)
        return None
    return Served(predictor, routing, path)

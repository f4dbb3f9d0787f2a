"""Counting metered usage: check and consume in one atomic step, never past a hard limit,
nothing accepted ever lost (docs/usage.md).

With Redis (production, tests), a consumption is decided by one Lua script on the period's
counter, `use:<customer>:<feature id>:<period start>` (under the cache's key prefix): it
looks up the idempotency key, compares the counter with the limit and increments it, all at
once, so any number of web processes agree. PostgreSQL holds what was accepted: the caller's
transaction takes a shared advisory lock on the customer's feature, runs the script, inserts
the `Consumption` row and commits before anyone is told "allowed". A counter Redis no longer
has (emptied, restarted) is rebuilt from those rows under the same lock taken exclusively:
the rebuild waits until every consumption already counted in Redis is committed, and no new
one is counted until the rebuild is done, so the rebuilt counter holds everything accepted
and the limit holds across it.

An idempotency key remembers its first answer in Redis for 24 hours (`idem:…`), beside the
counter; a rebuild restores the keys of accepted consumptions from their rows. A retry whose
first attempt was counted in Redis but died before its row was committed finds no row: it
waits for the exclusive lock (so a first attempt still running finishes first) and writes the
row itself. A refusal is remembered in Redis only.

Without Redis (the demo), the database alone decides, under a lock on the customer's row.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from toolkit.redis import redis_client
from toolkit.revisions import id_part
from usage.models import Consumption

IDEMPOTENCY_SECONDS = 24 * 3600
# A counter outlives its period by a day, so a late report or a retry still finds it.
COUNTER_GRACE = timedelta(days=1)
# Lua keeps numbers as doubles: a counter stops short of where they stop being exact.
LARGEST_COUNT = 2**53 - 1

# KEYS[1]: the counter; KEYS[2] (optional): the idempotency key.
# ARGV: quantity, limit (-1: unlimited), hard ("1" or "0"), idempotency TTL, period start.
# Returns {-1}: no counter (rebuild it first); {-2, first answer}: the key was used;
# {-3}: the counter would pass LARGEST_COUNT; {allowed (1/0), used}.
_SCRIPT = """
local used = redis.call('GET', KEYS[1])
if not used then return {-1} end
used = tonumber(used)
if #KEYS > 1 then
  local first = redis.call('GET', KEYS[2])
  if first then return {-2, first} end
end
local quantity = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local allowed = 1
if ARGV[3] == '1' and limit >= 0 and used + quantity > limit then
  allowed = 0
elseif used + quantity > 9007199254740991 then
  return {-3}
else
  used = redis.call('INCRBY', KEYS[1], quantity)
end
if #KEYS > 1 then
  redis.call('SET', KEYS[2], allowed .. ' ' .. used .. ' ' .. ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[5],
             'EX', ARGV[4])
end
return {allowed, used}
"""

MISSING, REPLAY, FULL = -1, -2, -3
# A counter Redis keeps losing, rebuilt again and again for one consumption this long: Redis is
# failing, and the consumption is answered 503.
GIVE_UP_AFTER = 2.0


class CounterFull(Exception):
    """The period's count cannot grow any further."""


@dataclass(frozen=True, slots=True)
class Meter:
    """One customer's metered feature in one period, as its check answer says."""

    customer_id: int
    external_id: str
    feature_id: int
    feature_key: str
    period_start: datetime
    resets_at: datetime
    limit: int | None  # None: unlimited
    hard: bool
    granted: bool  # whether the customer has the feature at all (a limit of 0 is had)

    @property
    def counter(self) -> str:
        """The period's counter, as a key of Redis (the default cache's prefix applied)."""
        start = int(self.period_start.timestamp())
        return cache.make_key(f"use:{id_part(self.external_id)}:{self.feature_id}:{start}")

    def idempotency(self, key: str) -> str:
        return cache.make_key(f"idem:{id_part(self.external_id)}:{self.feature_id}:{id_part(key)}")

    def remaining(self, used: int) -> int | None:
        return None if self.limit is None else max(self.limit - used, 0)

    def enabled(self, used: int) -> bool:
        """Whether the customer may use the feature now: it is granted, with something left
        under a hard limit."""
        if not self.granted:
            return False
        if self.limit is None or not self.hard:
            return self.limit is None or self.limit > 0
        return used < self.limit


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a consume or a report answered."""

    allowed: bool
    used: int | None  # None: the customer does not have the feature, nothing is counted
    limit: int | None
    replayed: bool = False  # the idempotency key's first answer, given again
    recorded: bool = True  # a report: whether it was counted

    def remaining(self) -> int | None:
        if self.used is None:
            return 0
        return None if self.limit is None else max(self.limit - self.used, 0)


def consume(meter: Meter, quantity: int, idempotency_key: str = "", *, at: datetime | None = None) -> Outcome:
    """Check and consume `quantity` in one atomic step: refused (nothing counted) when the
    customer does not have the feature or a hard limit would be passed."""
    return _count(meter, quantity, idempotency_key, Consumption.Kind.CONSUME, at or timezone.now())


def report(meter: Meter, quantity: int, idempotency_key: str = "", *, at: datetime | None = None) -> Outcome:
    """Count usage that already happened (at `at`), whatever the limit says; nothing for a
    customer without the feature (there is no limit to count it against)."""
    return _count(meter, quantity, idempotency_key, Consumption.Kind.REPORT, at or timezone.now())


def used(meters: list[Meter]) -> list[int]:
    """Each meter's count in its period: one round trip while Redis has every counter; a
    counter it lost is rebuilt first."""
    if not meters:
        return []
    client = redis_client()
    if client is None:
        return [_sum(meter) for meter in meters]
    values = client.mget([meter.counter for meter in meters])
    return [
        int(value) if value is not None else rebuild(meter)
        for meter, value in zip(meters, values, strict=True)
    ]


def rebuild(meter: Meter) -> int:
    """Set the period's counter from the rows, under the exclusive lock (module docstring),
    with the idempotency keys of the last 24 hours' accepted consumptions; returns the count."""
    client = redis_client()
    assert client is not None
    with transaction.atomic():
        _lock(meter, exclusive=True)
        total = _sum(meter)
        ttl = _counter_ttl(meter)
        pipe = client.pipeline(transaction=False)
        pipe.set(meter.counter, total, ex=ttl, nx=True)
        since = timezone.now() - timedelta(seconds=IDEMPOTENCY_SECONDS)
        for key, used_after, limit, quantity, period_start, created in (
            Consumption.objects.filter(
                customer_id=meter.customer_id, feature_id=meter.feature_id, created_at__gte=since
            )
            .exclude(idempotency_key="")
            .values_list("idempotency_key", "used_after", "limit", "quantity", "period_start", "created_at")
        ):
            left = IDEMPOTENCY_SECONDS - int((timezone.now() - created).total_seconds())
            if left > 0:
                first = _first_answer(True, used_after, limit, quantity, period_start)
                pipe.set(meter.idempotency(key), first, ex=left, nx=True)
        stored = pipe.execute()
    return total if stored[0] else int(client.get(meter.counter) or total)


# --- Redis and PostgreSQL ----------------------------------------------------------------------


def _count(meter: Meter, quantity: int, key: str, kind: str, at: datetime) -> Outcome:
    if not meter.granted:
        return Outcome(allowed=False, used=None, limit=0, recorded=False)
    client = redis_client()
    if client is None:
        return _count_in_database(meter, quantity, key, kind, at)
    hard = "1" if kind == Consumption.Kind.CONSUME and meter.hard else "0"
    limit = -1 if meter.limit is None else meter.limit
    keys = [meter.counter, meter.idempotency(key)] if key else [meter.counter]
    args = [quantity, limit, hard, IDEMPOTENCY_SECONDS, int(meter.period_start.timestamp())]
    deadline = time.monotonic() + GIVE_UP_AFTER
    while time.monotonic() < deadline:
        status = MISSING
        try:
            with _Counting(meter) as step:
                result = _script(client)(keys=keys, args=args)
                status = int(result[0])
                if status == FULL:
                    raise CounterFull(f"{meter.feature_key}'s count for this period cannot grow any further.")
                if status == 1:
                    step.record(_row(meter, quantity, int(result[1]), key, kind, at))
        except (IntegrityError, DataError):
            if status == 1:
                # The row was refused, so nothing was recorded: take the count back (a refusal
                # seen meanwhile errs on the safe side). Any other failure leaves the count as
                # it is: a commit whose outcome is unknown must not be counted twice over.
                client.decrby(meter.counter, quantity)
                if key:
                    client.delete(meter.idempotency(key))
            raise
        if status == MISSING:
            rebuild(meter)
            continue
        if status == REPLAY:
            return _replay(meter, key, result[1], kind, at)
        return Outcome(allowed=status == 1, used=int(result[1]), limit=meter.limit)
    # Emptied again after every rebuild: Redis is not keeping what it is given (answered 503).
    raise RedisConnectionError(f"Redis kept losing the count of {meter.feature_key} for {GIVE_UP_AFTER} s.")


def _replay(meter: Meter, key: str, first: bytes | str, kind: str, at: datetime) -> Outcome:
    """The first answer to `key`, given again. An accepted one whose row is missing (its first
    attempt died between Redis and PostgreSQL, or is still running) gets its row now, once
    every attempt still running has committed."""
    allowed, used_after, limit, quantity, period_start = _parse_first(first)
    outcome = Outcome(allowed=allowed, used=used_after, limit=limit, replayed=True)
    if not allowed or _recorded(meter, key):
        return outcome
    with transaction.atomic():
        _lock(meter, exclusive=True)
        if not _recorded(meter, key):
            started = datetime.fromtimestamp(period_start, tz=UTC)
            Consumption.objects.create(
                customer_id=meter.customer_id,
                feature_id=meter.feature_id,
                period_start=started,
                quantity=quantity,
                used_after=used_after,
                limit=limit,
                kind=kind,
                idempotency_key=key,
                happened_at=at,
            )
    return outcome


def _recorded(meter: Meter, key: str) -> bool:
    since = timezone.now() - timedelta(seconds=IDEMPOTENCY_SECONDS)
    return Consumption.objects.filter(
        customer_id=meter.customer_id, feature_id=meter.feature_id, idempotency_key=key, created_at__gte=since
    ).exists()


_INSERT = (
    "INSERT INTO usage_consumption (customer_id, feature_id, period_start, quantity, used_after,"
    ' "limit", kind, idempotency_key, happened_at, created_at)'
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


class _Counting:
    """One consumption's transaction: the shared advisory lock first, then the script, then the
    row (`record`), committed on the way out.

    In a request (PostgreSQL, no atomic block open) it is two round trips to PostgreSQL:
    `BEGIN` with the lock, then the `INSERT` with `COMMIT`. Django's psycopg cursors bind
    parameters on the client, so each pair goes as one message; Django's own transaction
    handling would make it four. Inside a caller's atomic block (a service, a test) it is a
    savepoint of that block, as any other write."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.row: list | None = None
        self.own = connection.vendor == "postgresql" and not connection.in_atomic_block

    def __enter__(self) -> _Counting:
        if self.own:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN; SELECT pg_advisory_xact_lock_shared(%s)", [_lock_id(self.meter)])
        else:
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            _lock(self.meter, exclusive=False)
        return self

    def record(self, row: list) -> None:
        """Insert the consumption's row (`_row`): now, or with the commit."""
        self.row = row
        if not self.own:
            _insert(row)

    def __exit__(self, kind, error, traceback) -> None:
        if not self.own:
            self.atomic.__exit__(kind, error, traceback)
            return
        with connection.cursor() as cursor:
            if kind is not None:
                cursor.execute("ROLLBACK")
                return
            try:
                if self.row is None:
                    cursor.execute("COMMIT")
                else:
                    cursor.execute(_INSERT + "; COMMIT", self.row)
            except DatabaseError:
                if connection.connection is not None and not connection.connection.closed:
                    cursor.execute("ROLLBACK")  # the INSERT failed: the transaction is aborted
                raise


def _row(meter: Meter, quantity: int, used_after: int, key: str, kind: str, at: datetime) -> list:
    """A `Consumption` row's values, in `_INSERT`'s order, as the database stores them (SQLite
    keeps times as texts: one written differently from Django's would match no lookup)."""
    when = connection.ops.adapt_datetimefield_value
    return [
        meter.customer_id,
        meter.feature_id,
        when(meter.period_start),
        quantity,
        used_after,
        meter.limit,
        kind,
        key,
        when(at),
        when(timezone.now()),
    ]


def _insert(row: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, row)


def _lock_id(meter: Meter) -> int:
    name = f"usage:{meter.customer_id}:{meter.feature_id}".encode()
    return zlib.crc32(name) | (meter.customer_id & 0x7FFFFFFF) << 32


def _lock(meter: Meter, *, exclusive: bool) -> None:
    """The advisory lock on the customer's feature (module docstring), inside a transaction
    already open; none on SQLite."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [_lock_id(meter)])


_scripts: dict[int, object] = {}


def _script(client):
    """The registered script on `client` (redis-py runs it by its SHA, loading it once)."""
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SCRIPT)
    return script


def _counter_ttl(meter: Meter) -> int:
    return max(int((meter.resets_at + COUNTER_GRACE - timezone.now()).total_seconds()), 60)


def _sum(meter: Meter) -> int:
    return (
        Consumption.objects.filter(
            customer_id=meter.customer_id, feature_id=meter.feature_id, period_start=meter.period_start
        ).aggregate(total=Sum("quantity"))["total"]
        or 0
    )


def _first_answer(
    allowed: bool, used_after: int, limit: int | None, quantity: int, period_start: datetime
) -> str:
    shown = -1 if limit is None else limit
    return f"{int(allowed)} {used_after} {shown} {quantity} {int(period_start.timestamp())}"


def _parse_first(first: bytes | str) -> tuple[bool, int, int | None, int, int]:
    text = first.decode() if isinstance(first, bytes) else first
    allowed, used_after, limit, quantity, period_start = (int(part) for part in text.split())
    return allowed == 1, used_after, None if limit < 0 else limit, quantity, period_start


# --- the database alone ------------------------------------------------------------------------


def _count_in_database(meter: Meter, quantity: int, key: str, kind: str, at: datetime) -> Outcome:
    """No Redis: the customer's row is locked (PostgreSQL; SQLite takes one writer at a time),
    the period's rows summed, the new one inserted."""
    from subscriptions.models import Customer

    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=meter.customer_id).exists()
        if key:
            since = timezone.now() - timedelta(seconds=IDEMPOTENCY_SECONDS)
            first = (
                Consumption.objects.filter(
                    customer_id=meter.customer_id,
                    feature_id=meter.feature_id,
                    idempotency_key=key,
                    created_at__gte=since,
                )
                .values_list("used_after", "limit")
                .first()
            )
            if first is not None:
                return Outcome(allowed=True, used=first[0], limit=first[1], replayed=True)
        total = _sum(meter)
        hard = kind == Consumption.Kind.CONSUME and meter.hard
        if hard and meter.limit is not None and total + quantity > meter.limit:
            return Outcome(allowed=False, used=total, limit=meter.limit)
        if total + quantity > LARGEST_COUNT:
            raise CounterFull(f"{meter.feature_key}'s count for this period cannot grow any further.")
        _insert(_row(meter, quantity, total + quantity, key, kind, at))
    return Outcome(allowed=True, used=total + quantity, limit=meter.limit)

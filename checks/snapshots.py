"""The check endpoint's hot path (docs/operations.md, caching): a customer's whole resolution, precomputed and
cached, keyed by the catalog and customer revisions of `toolkit.revisions`.

Three tiers, each checked against the current revisions:

1. process memory: an LRU of snapshots by customer; a hit costs no further I/O. While the
   process's revision listener is healthy (`checks.listener`), a snapshot read during its current
   subscription is checked against what the listener knows, with no round trip at all;
   otherwise against the revisions read in the request's single round trip;
2. Redis: one key per customer, `snap:<external id>`, holding the revisions it was built under.
   It is fetched in the same round trip as the revisions whenever memory has nothing for the
   customer, so a check answered from Redis still costs one round trip and no query;
3. the database: the customer (one query), its subscriptions, add-ons, overrides and list
   entries (`subscriptions.selectors`, at most four), with the catalog specs cached per catalog
   revision (memory, then Redis, then five queries).

A snapshot whose revisions differ from the current ones is a miss, and so is one read at or
after its `valid_until` (the first instant any answer changes by itself: an override or trial
ending, a grace period running out). Revisions are read before any row, so a snapshot is never
tagged newer than the data it holds. Unknown customers are cached too (their revision moves
when they are created), so a flood of checks for an unknown id does not reach the database.

ETags name the revisions and the `valid_until` of what they describe: `If-None-Match` is
answered 304 from the round trip alone, with no snapshot read, while both revisions are
unchanged and that instant has not come.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache

from catalog.models import Feature
from catalog.selectors import feature_spec, load_catalog_specs
from checks import store
from checks.listener import BUMP_MEMORY_SECONDS, known
from checks.store import Batch, as_int, hot_mget
from subscriptions.models import Customer
from subscriptions.resolution import METERED, Answer, CustomerState, resolve_feature
from subscriptions.selectors import resolve_customer, with_topups
from toolkit.redis import redis_client
from toolkit.revisions import CATALOG_KEY, customer_key, id_part
from toolkit.revisions import read as read_revisions
from usage.meter import Meter, used

FORMAT = 4  # of stored snapshots, catalog specs and ETags: a new format ignores the old ones
_UNTIL = b',"valid_until":'
CATALOG_SPECS_KEY = "catalog-specs:v{format}:{revision}"


def snapshot_key(external_id: str) -> str:
    return f"snap:{id_part(external_id)}"


_LAST_EPOCH = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as DRF writes times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def answer_entry(answer: Answer) -> dict[str, Any]:
    """One entry of the check response (docs/api.md). A metered answer adds its usage, as of
    its build (none yet): `live_entry` puts the count in when it is served."""
    entry = {
        "kind": answer.kind,
        "enabled": answer.enabled,
        "value": answer.value,
        "unlimited": answer.unlimited,
        "source": answer.source,
        "valid_until": iso(answer.valid_until),
        "fallback": answer.fallback,
    }
    if answer.kind == METERED:
        # Nothing is counted against a limit the customer does not have: `used` is null then.
        limit = None if answer.unlimited else answer.value if answer.granted else 0
        entry.update(
            used=0 if answer.granted else None,
            limit=limit,
            remaining=limit,
            resets_at=iso(answer.resets_at),
            limit_type="hard" if answer.hard else "soft",
        )
    return entry


def _metering(answer: Answer, feature_id: int) -> list:
    """A metered answer's row of `Snapshot.metered`."""
    assert answer.period_start is not None and answer.resets_at is not None
    limit = None if answer.unlimited else answer.value if answer.granted else 0
    return [
        feature_id,
        answer.period_start.timestamp(),
        answer.resets_at.timestamp(),
        limit,
        answer.hard,
        answer.granted,
    ]


@dataclass(slots=True)
class Snapshot:
    """Every answer for one customer, as built under `revisions`, valid until `valid_until`
    (epoch seconds; None: until something is changed).

    The answers are kept rendered: `body` is the check response's `entitlements` object as
    JSON bytes, served as is. `spans` says where each feature's answer lies in `body` or
    `archived`, so a single-feature check slices its answer out without parsing the rest.
    """

    external_id: str
    revisions: tuple[int, int]
    exists: bool
    valid_until: float | None
    body: bytes  # {"<feature key>": {answer}, ...}: every active feature
    archived: bytes  # the same for archived features, only ever asked for one by one
    spans: bytes = b"{}"  # {"<feature key>": packed span (`_pack`), ...}
    _spans: dict[str, int] | None = field(default=None, repr=False)
    # The listener's subscription under which these revisions were last confirmed (checks.listener);
    # 0: never trusted without a round trip.
    epoch: int = 0
    customer_id: int = 0
    # Metered answers, whose usage is read when served: key → [feature id, period start,
    # resets at (epoch seconds), limit (None: unlimited), hard, granted].
    metered: dict[str, list] = field(default_factory=dict)

    def meter_of(self, feature_key: str) -> Meter | None:
        """The usage meter behind a metered answer; None for any other answer."""
        row = self.metered.get(feature_key)
        if row is None:
            return None
        feature_id, start, resets_at, limit, hard, granted = row
        return Meter(
            customer_id=self.customer_id,
            external_id=self.external_id,
            feature_id=feature_id,
            feature_key=feature_key,
            period_start=datetime.fromtimestamp(start, tz=UTC),
            resets_at=datetime.fromtimestamp(resets_at, tz=UTC),
            limit=limit,
            hard=hard,
            granted=granted,
        )

    def holds(self, revisions: tuple[int, int], at: float) -> bool:
        return self.revisions == revisions and (self.valid_until is None or at < self.valid_until)

    def trusted(self, at: float) -> bool:
        """Current without asking Redis: confirmed during the listener's current, healthy
        subscription, under the catalog revision it knows, and not ended by time. (A bump of
        this customer since drops it from memory: `forget_older`.)"""
        return (
            self.epoch != 0
            and self.epoch == known.epoch
            and self.revisions[0] == known.catalog
            and (self.valid_until is None or at < self.valid_until)
            and known.healthy()
        )

    def answer(self, feature_key: str) -> tuple[bytes, float | None] | None:
        """One feature's answer (active or archived) as JSON, with its `valid_until` (epoch
        seconds; None: until something is changed); None for an unknown feature."""
        if self._spans is not None:
            span = self._spans.get(feature_key)
        elif self.epoch:  # kept in this process's memory: worth parsing once
            self._spans = orjson.loads(self.spans)
            span = self._spans.get(feature_key)
        else:  # read from Redis for this one check: find the one span (parsing all costs ~40 µs)
            span = _find_span(self.spans, feature_key)
        if span is None:
            return None
        start, length = span >> 24, (span >> 1) & 0x7FFFFF
        entry = (self.archived if span & 1 else self.body)[start : start + length]
        # Most answers hold until something changes: seen without parsing. The answer's own
        # `valid_until` is the last match (only its `fallback` and a metered answer's usage
        # come after it, none named so; a quote inside a JSON string is escaped, so no string
        # holds this text).
        at = entry.rfind(_UNTIL)
        if at != -1 and entry.startswith(b"null", at + len(_UNTIL)):
            return entry, None
        until = orjson.loads(entry).get("valid_until")
        return entry, None if until is None else datetime.fromisoformat(until).timestamp()

    def weight(self) -> int:
        """Roughly the memory it holds, for the in-process budget (the spans parsed: about
        100 bytes a feature)."""
        return len(self.body) + len(self.archived) + 3 * len(self.spans) + 400

    def valid_until_iso(self) -> str | None:
        if self.valid_until is None:
            return None
        # A float epoch of year 9999's last microsecond rounds up into year 10000: such a date
        # (stored before the API refused dates so far ahead) is written as year 9999's last second.
        return iso(datetime.fromtimestamp(min(self.valid_until, _LAST_EPOCH), tz=UTC))

    def dumps(self) -> bytes:
        """Header line, then the two JSON objects as they are: loading needs no re-encoding."""
        head: dict[str, Any] = {
            "f": FORMAT,
            "r": list(self.revisions),
            "x": self.exists,
            "v": self.valid_until,
        }
        if self.metered:
            head.update(c=self.customer_id, m=self.metered)
        header = orjson.dumps(head)
        return b"\n".join((header, self.spans, self.body, self.archived))

    @classmethod
    def loads(cls, external_id: str, data: bytes | None) -> Snapshot | None:
        if not data:
            return None
        try:
            # Cut where the first three newlines are. (`data.split(b"\n", 3)` gives the same
            # parts but walks the bytes one by one: 10 µs for a 33 kB snapshot, against 1 µs.)
            first = data.index(b"\n")
            second = data.index(b"\n", first + 1)
            third = data.index(b"\n", second + 1)
            raw = orjson.loads(data[:first])
            if raw.get("f") != FORMAT:
                return None
            return cls(
                external_id=external_id,
                revisions=(int(raw["r"][0]), int(raw["r"][1])),
                exists=bool(raw["x"]),
                valid_until=raw["v"],
                body=data[second + 1 : third],
                archived=data[third + 1 :],
                spans=data[first + 1 : second],
                customer_id=raw.get("c", 0),
                metered=raw.get("m") or {},
            )
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError):
            return None


def _find_span(spans: bytes, feature_key: str) -> int | None:
    """`orjson.loads(spans).get(feature_key)` without parsing the rest. The spans are a flat
    object of integers, and a quote inside a JSON string is escaped, so the key's encoding
    after `{` or `,` can only be that key."""
    needle = orjson.dumps(feature_key) + b":"
    at = spans.find(needle)
    while at > 0 and spans[at - 1] not in b"{,":
        at = spans.find(needle, at + 1)
    if at <= 0:
        return None
    start = at + len(needle)
    end = spans.find(b",", start)
    try:
        return int(spans[start : end if end != -1 else len(spans) - 1])
    except ValueError:
        return None


# --- tier 1: process memory -----------------------------------------------------------------------

_memory: OrderedDict[str, Snapshot] = OrderedDict()
_memory_lock = threading.Lock()
_memory_used = 0


def _budget() -> int:
    return settings.API_SNAPSHOT_MEMORY_MB * 1024 * 1024


def remembered(external_id: str) -> Snapshot | None:
    if not settings.API_SNAPSHOTS_IN_MEMORY:
        return None
    key = customer_key(external_id)
    with _memory_lock:
        snapshot = _memory.get(key)
        if snapshot is not None:
            _memory.move_to_end(key)
        return snapshot


def held(external_id: str) -> bool:
    """Whether this process's memory holds the customer's snapshot as confirmed under the
    listener's current subscription and catalog revision: then the memory tier answers, unless
    the snapshot's `valid_until` has come (not looked at here, to spare a clock read). A plain
    read: no lock and no move in the LRU (`checks.fast.read_ahead` asks this of every check)."""
    snapshot = _memory.get(customer_key(external_id))
    if snapshot is None or snapshot.epoch == 0:
        return False
    return snapshot.epoch == known.epoch and snapshot.revisions[0] == known.catalog


def remember(snapshot: Snapshot, *, epoch: int = 0, read_at: float = 0.0) -> None:
    """Keep it in this process, evicting the least recently used beyond the memory budget.
    `epoch` and `read_at`: the listener's subscription and the time at which its revisions
    were read (see `confirm`)."""
    global _memory_used
    if not settings.API_SNAPSHOTS_IN_MEMORY:
        return
    key = customer_key(snapshot.external_id)
    with _memory_lock:
        previous = _memory.pop(key, None)
        if previous is not None:
            _memory_used -= previous.weight()
        _memory[key] = snapshot
        _memory_used += snapshot.weight()
        _evict()
    confirm(snapshot, epoch, read_at)


def confirm(snapshot: Snapshot, epoch: int, read_at: float) -> None:
    """Trust `snapshot` without round trips from now on, its revisions having been read (at
    `read_at`, during subscription `epoch`) and found current. Set only after it is in memory:
    a customer bump that arrived since the read is then either seen here or drops it."""
    if not epoch or time.monotonic() - read_at > BUMP_MEMORY_SECONDS / 2:
        return
    snapshot.epoch = epoch
    if known.customer_moved_past(customer_key(snapshot.external_id), snapshot.revisions[1]):
        snapshot.epoch = 0


def forget_older(key: str, revision: int) -> None:
    """A customer's revision moved to `revision`: drop its snapshot if built before."""
    global _memory_used
    with _memory_lock:
        snapshot = _memory.get(key)
        if snapshot is not None and snapshot.revisions[1] < revision:
            del _memory[key]
            _memory_used -= snapshot.weight()


def _evict() -> None:
    global _memory_used
    while _memory_used > _budget() and len(_memory) > 1:
        _, oldest = _memory.popitem(last=False)
        _memory_used -= oldest.weight()


def forget_all() -> None:
    """Empty this process's memory tiers (tests; never needed for correctness)."""
    global _catalog, _memory_used
    with _memory_lock:
        _memory.clear()
        _memory_used = 0
        _catalog = None


# --- one check: what the round trip brings --------------------------------------------------------


@dataclass(slots=True)
class Prefetch:
    """A check's reads, queued into the request's single round trip and read back from it."""

    external_id: str
    at: datetime
    revisions: tuple[int, int] | None = None
    stored: Snapshot | None = None
    _slots: dict[str, int] = field(default_factory=dict)
    _memory_hit: bool = False
    epoch: int = 0
    read_at: float = 0.0

    def queue(self, batch: Batch) -> None:
        self.epoch, self.read_at = known.trusted_epoch(), time.monotonic()
        self._slots["revisions"] = batch.mget([CATALOG_KEY, customer_key(self.external_id)])
        in_memory = remembered(self.external_id)
        self._memory_hit = in_memory is not None
        if not self._memory_hit:
            # Memory has nothing for this customer: fetch the shared snapshot in the same trip.
            self._slots["snapshot"] = batch.get(snapshot_key(self.external_id))

    def receive(self, results: list) -> None:
        catalog, customer = (as_int(v) for v in results[self._slots["revisions"]])
        if catalog is None or customer is None:  # the cache lost one: restart it from the clock
            catalog, customer = read_revisions(CATALOG_KEY, customer_key(self.external_id))
        self.revisions = (catalog, customer)
        known.observe_read(catalog=catalog)
        if "snapshot" in self._slots:
            self.stored = Snapshot.loads(self.external_id, results[self._slots["snapshot"]])

    def fetch(self) -> Prefetch:
        """Run the reads on their own (a request that did not prefetch)."""
        batch = Batch()
        self.queue(batch)
        self.receive(batch.execute())
        return self

    def snapshot(self) -> Snapshot:
        """The customer's snapshot under the current revisions, from the cheapest tier that
        has a valid one, else built (and stored in both cache tiers)."""
        assert self.revisions is not None
        now = self.at.timestamp()
        in_memory = remembered(self.external_id)
        if in_memory is not None and in_memory.holds(self.revisions, now):
            confirm(in_memory, self.epoch, self.read_at)
            return in_memory
        stored = self.stored
        if stored is None and self._memory_hit:
            # Memory had a stale one, so the shared copy was not fetched: another process may
            # have rebuilt it already.
            stored = _read_stored(self.external_id)
        if stored is not None and stored.holds(self.revisions, now):
            remember(stored, epoch=self.epoch, read_at=self.read_at)
            return stored
        built = build(self.external_id, self.revisions, self.at)
        _store(built, now)
        remember(built, epoch=self.epoch, read_at=self.read_at)
        return built


def _read_stored(external_id: str) -> Snapshot | None:
    client = redis_client()
    key = snapshot_key(external_id)
    data = client.get(cache.make_key(key)) if client is not None else cache.get(key)
    return Snapshot.loads(external_id, data)


def _store(snapshot: Snapshot, now: float) -> None:
    ttl = settings.API_SNAPSHOT_TTL
    if snapshot.valid_until is not None:
        ttl = min(ttl, int(snapshot.valid_until - now) + 1)
    if ttl <= 0:
        return
    key = snapshot_key(snapshot.external_id)
    client = redis_client()
    if client is not None:
        client.set(cache.make_key(key), snapshot.dumps(), ex=ttl)
    else:
        cache.set(key, snapshot.dumps(), timeout=ttl)


_ahead = threading.local()


def _current_keys(external_id: str) -> list[str]:
    return [customer_key(external_id), snapshot_key(external_id)]


def read_ahead(external_id: str) -> None:
    """Send `read_current(external_id)`'s round trip now, at the start of the request, so that
    its reply is waiting when the view asks (`checks.middleware.ReadAheadMiddleware`). What the
    listener knew when it was sent goes with it: the reply is only used under the same."""
    epoch, read_at = known.trusted_epoch(), time.monotonic()
    catalog = known.catalog
    if epoch and catalog is not None and store.send_ahead(_current_keys(external_id)):
        _ahead.sent = (external_id, epoch, catalog, read_at)


def settle() -> None:
    """Drop a read sent ahead that the request did not use (at the end of every check)."""
    _ahead.sent = None
    store.settle()


def read_current(external_id: str, at: datetime) -> Snapshot | None:
    """The customer's snapshot from Redis, if it is current, in one round trip (its revision
    and the snapshot; the catalog revision is the one the listener knows). None when the
    listener is not healthy or the stored snapshot is missing or out of date: the caller then
    takes the full round trip and, if need be, builds. The round trip `read_ahead` sent for
    this customer is used if the listener's subscription and catalog revision are still those
    it was sent under; otherwise its reply is dropped and the read made again."""
    sent, _ahead.sent = getattr(_ahead, "sent", None), None
    if sent is not None and sent[0] == external_id and sent[1:3] == (known.trusted_epoch(), known.catalog):
        epoch, catalog, read_at = sent[1:]
    else:
        if sent is not None:
            store.settle()  # for the same keys, `hot_mget` would take that reply as this read's
        epoch, read_at = known.trusted_epoch(), time.monotonic()
        if not epoch:
            return None
        catalog = known.catalog
    values = hot_mget(_current_keys(external_id))
    if values is None:  # the cache is not Redis
        return None
    revision, data = values
    customer = as_int(revision)
    stored = Snapshot.loads(external_id, data)
    if catalog is None or customer is None or stored is None:
        return None
    if not stored.holds((catalog, customer), at.timestamp()):
        return None
    remember(stored, epoch=epoch, read_at=read_at)
    return stored


# --- the answers' bodies ---------------------------------------------------------------------------


def customer_body(external_id: str, at: datetime, snapshot: Snapshot, usage: Usage | None = None) -> bytes:
    """`GET /customers/{id}/entitlements`: the snapshot's answers as they are, in their envelope
    (metered ones with their `usage`)."""
    return b"".join(
        (
            b'{"customer":',
            orjson.dumps(external_id),
            b',"evaluated_at":',
            orjson.dumps(iso(at)),
            b',"valid_until":',
            orjson.dumps(snapshot.valid_until_iso()),
            b',"entitlements":',
            _live_body(snapshot, usage) if usage else snapshot.body,
            b"}",
        )
    )


# --- metered answers: the count, read when served -------------------------------------------------

Usage = dict[str, tuple[Meter, int]]  # feature key → its meter and current count


def usage_of(snapshot: Snapshot, feature_key: str | None = None) -> Usage:
    """The current count of each metered answer a check serves that the customer has: every one
    in the snapshot, or the one feature asked for. No I/O when there is none (a customer
    without metered features); else one round trip (usage.meter)."""
    if not snapshot.metered:
        return {}
    if feature_key is None:
        keys = [key for key, row in snapshot.metered.items() if row[5]]
    elif feature_key in snapshot.metered and snapshot.metered[feature_key][5]:
        keys = [feature_key]
    else:
        return {}
    if not keys:
        return {}
    meters = [snapshot.meter_of(key) for key in keys]
    return {m.feature_key: (m, count) for m, count in zip(meters, used(meters), strict=True)}


def live_entry(entry: bytes, usage: Usage, feature_key: str) -> bytes:
    """One answer (`Snapshot.answer`) with its count, if it is metered."""
    found = usage.get(feature_key)
    if found is None:
        return entry
    meter, count = found
    data = orjson.loads(entry)
    data.update(enabled=meter.enabled(count), used=count, remaining=meter.remaining(count))
    return orjson.dumps(data)


def _live_body(snapshot: Snapshot, usage: Usage) -> bytes:
    """The snapshot's active answers with the counts of the metered ones spliced in."""
    spans = snapshot._spans if snapshot._spans is not None else orjson.loads(snapshot.spans)
    body, pieces, done = snapshot.body, [], 0
    for key in sorted((key for key in usage if not spans[key] & 1), key=lambda key: spans[key]):
        start, length = spans[key] >> 24, (spans[key] >> 1) & 0x7FFFFF
        pieces += (body[done:start], live_entry(body[start : start + length], usage, key))
        done = start + length
    pieces.append(body[done:])
    return b"".join(pieces)


def usage_tag(usage: Usage) -> str:
    """The part of an ETag that names the counts (empty when no metered answer is served)."""
    if not usage:
        return ""
    counts = ",".join(f"{key}={count}" for key, (_meter, count) in sorted(usage.items()))
    return "u" + hashlib.blake2b(counts.encode(), digest_size=8).hexdigest()


def feature_body(external_id: str, feature_key: str, entry: bytes) -> bytes:
    """`GET /customers/{id}/entitlements/{feature}`: one answer (`Snapshot.answer`), after the
    feature and the customer."""
    return b"".join(
        (
            b'{"feature":',
            orjson.dumps(feature_key),
            b',"customer":',
            orjson.dumps(external_id),
            b",",
            entry[1:],
        )
    )


# --- tier 3: building from the database ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedCatalog:
    revision: int
    specs: Any  # catalog.selectors.CatalogSpecs
    archived: tuple  # FeatureSpec of archived features
    archived_ids: dict[str, int] = field(default_factory=dict)  # their key → pk


_catalog: CachedCatalog | None = None


def catalog_for(revision: int) -> CachedCatalog:
    """The catalog specs under `revision`: from memory, else Redis, else five queries (plus one
    for archived features), then kept in both."""
    global _catalog
    current = _catalog
    if current is not None and current.revision == revision:
        return current
    key = CATALOG_SPECS_KEY.format(format=FORMAT, revision=revision)
    loaded = cache.get(key)
    if not isinstance(loaded, CachedCatalog) or loaded.revision != revision:
        loaded = _load_catalog(revision)
        cache.set(key, loaded, timeout=settings.API_SNAPSHOT_TTL)
    _catalog = loaded
    return loaded


def _load_catalog(revision: int) -> CachedCatalog:
    rows = list(Feature.objects.filter(status=Feature.Status.ARCHIVED))
    archived = tuple(feature_spec(f) for f in rows)
    ids = {f.key: f.pk for f in rows}
    return CachedCatalog(revision=revision, specs=load_catalog_specs(), archived=archived, archived_ids=ids)


def build(external_id: str, revisions: tuple[int, int], at: datetime) -> Snapshot:
    """Resolve the customer now (docs/domain.md) and shape every answer for the API."""
    customer = with_topups(Customer.objects.filter(external_id=external_id)).first()
    if customer is None:
        return Snapshot(external_id, revisions, exists=False, valid_until=None, body=b"{}", archived=b"{}")
    catalog = catalog_for(revisions[0])
    try:
        resolution = resolve_customer(customer, now=at, catalog=catalog.specs)
    except KeyError:
        # The customer refers to an item newer than the cached catalog (its revision bump is
        # on its way): resolve against the catalog as it is now. Newer data under an older
        # revision is only ever a miss later, never a stale answer.
        catalog = _load_catalog(revisions[0])
        resolution = resolve_customer(customer, now=at, catalog=catalog.specs)
    answers = {key: answer_entry(resolution.answers[key]) for key in sorted(resolution.answers)}
    nobody = CustomerState(external_id=external_id, country="", traits={}, subscriptions=())
    archived_answers = [resolve_feature(spec, nobody, {}, at) for spec in catalog.archived]
    archived = {answer.feature_key: answer_entry(answer) for answer in archived_answers}
    ids = {**catalog.specs.feature_ids, **catalog.archived_ids}
    metered = {
        answer.feature_key: _metering(answer, ids[answer.feature_key])
        for answer in (*resolution.answers.values(), *archived_answers)
        if answer.kind == METERED
    }
    valid_until = resolution.valid_until.timestamp() if resolution.valid_until is not None else None
    spans: dict[str, int] = {}
    body = _render(answers, 0, spans)
    return Snapshot(
        external_id,
        revisions,
        True,
        valid_until,
        body,
        _render(archived, 1, spans),
        orjson.dumps(spans),
        customer_id=customer.pk,
        metered=metered,
    )


def _render(answers: dict[str, dict[str, Any]], section: int, spans: dict[str, int]) -> bytes:
    """`orjson.dumps(answers)`, byte for byte, noting where each answer lies in it."""
    parts, position = [b"{"], 1
    for number, (key, answer) in enumerate(answers.items()):
        head = (b"," if number else b"") + orjson.dumps(key) + b":"
        entry = orjson.dumps(answer)
        # One integer per answer: start, length (under 8 MB) and section. A dict of plain ints
        # is nothing for the garbage collector to walk; 200 lists per snapshot in memory were.
        spans[key] = (position + len(head)) << 24 | len(entry) << 1 | section
        parts += (head, entry)
        position += len(head) + len(entry)
    parts.append(b"}")
    return b"".join(parts)


# --- ETags ---------------------------------------------------------------------------------------


def etag(kind: str, revisions: tuple[int, int], valid_until: float | None, usage: str = "") -> str:
    """A weak ETag (the body's `evaluated_at` moves; the answers do not) naming the revisions,
    the instant the answers stop holding (epoch seconds) and, for metered answers, their counts
    (`usage_tag`)."""
    until = "-" if valid_until is None else str(round(valid_until * 1_000_000))
    counts = f".{usage}" if usage else ""
    return f'W/"{kind}{FORMAT}.{revisions[0]}.{revisions[1]}.{until}{counts}"'


def still_fresh(
    if_none_match: str, kind: str, revisions: tuple[int, int], at: datetime, usage: str = ""
) -> str | None:
    """The ETag in `If-None-Match` that still describes the answer, if any: same revisions,
    its `valid_until` not reached, and the same counts of metered answers (`usage_tag`; before
    they are read, no ETag naming counts is fresh)."""
    now_us = at.timestamp() * 1_000_000
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        opaque = tag[2:] if tag.startswith("W/") else tag
        if len(opaque) < 2 or opaque[0] != '"' or opaque[-1] != '"':
            continue
        parts = opaque[1:-1].split(".")
        if len(parts) not in (4, 5) or parts[0] != f"{kind}{FORMAT}":
            continue
        if (parts[4] if len(parts) == 5 else "") != (usage or ""):
            continue
        if parts[1] != str(revisions[0]) or parts[2] != str(revisions[1]):
            continue
        if parts[3] == "-":
            return f"W/{opaque}"
        try:
            if now_us < int(parts[3]):
                return f"W/{opaque}"
        except ValueError:
            continue
    return None

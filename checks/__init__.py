"""The check engine: answers "what may this customer use right now?".

A check is `GET /api/v1/customers/<id>/entitlements` (every feature) or
`.../entitlements/<feature>` (one), made by an application with an API key. The answer is the
customer's resolution (`subscriptions.resolution`) as JSON, with a weak ETag naming the
revisions it was built under; `If-None-Match` with a still-current ETag gets a 304.

The path of a request. `middleware.ReadAheadMiddleware` runs first: for a check that will need
Redis, it sends the read before the rest of the middleware runs, and drops an unread reply when
the response leaves. The URL's view is `fast.with_fast_path`. The fast path answers a warm
check on its own: a GET asking for plain JSON, with a key this process remembers under the
current keys revision, the listener healthy, a snapshot it trusts in memory or finds current
in Redis, and the key within its rate. Anything else (errors, cold customers, a listener
down, the demo without Redis) goes to the DRF view, a `views.CheckView`, which gives the same
bytes and headers. There the key authentication (`api.authentication`) makes the request's
one round trip, a `store.Batch` pipeline: the keys revision, the check's revisions and stored
snapshot (`CheckView.prefetch`), and the counts this process has not sent yet. The fast path
makes none (memory) or one (`store.hot_mget`, an MGET on the thread's own connection, perhaps
sent ahead by the middleware).

A snapshot (`snapshots.Snapshot`) holds every answer for one customer, already rendered,
tagged with the catalog and customer revisions (`toolkit.revisions`) and the instant its
answers stop holding (`valid_until`: a trial or override ending). Three tiers, cheapest first:

1. process memory, an LRU within API_SNAPSHOT_MEMORY_MB. Out of date when either revision
   moved or `valid_until` came; a customer's bump drops the customer's entry at once.
2. Redis, `snap:<id>`, shared by every process. Out of date on the same terms; it expires
   after API_SNAPSHOT_TTL, or at `valid_until` if sooner.
3. the database: the customer's rows and the catalog specs (themselves cached per catalog
   revision, in memory and in Redis). A build is stored in both tiers above.

Every write moves a revision after commit, so no tier serves an answer older than the write.

A metered answer also says how much the customer used this period (docs/usage.md). A count
moves with every consume, so it is not in the snapshot: the snapshot keeps each metered
answer's meter (feature, period, limit: `Snapshot.metered`), and serving reads the counts of
the ones the customer has in one MGET (`snapshots.usage_of`) and writes them into the answer.
A customer without metered features reads none. Such an ETag names the counts too.

The listener (`listener.Listener`, one thread per process, started by the first check)
subscribes to the channel every bump is published on and keeps `listener.known`: the catalog
and keys revisions, and the customers bumped lately. It pings Redis four times a second; it is
healthy while subscribed and answered within STALE_AFTER. While healthy, a process trusts
without asking Redis a key it remembers under the keys revision it knows, and a snapshot in
memory read during the current subscription under the current catalog revision. When it is
not healthy, nothing is trusted: every check takes the round trip. A reconnect starts a new
epoch, and snapshots of the old one are checked again.

The counters (`counters.counters`) are kept in process memory: each key's throttle window, its
last use and the checks per day and feature. The listener sends them to Redis every
FLUSH_SECONDS; a round trip takes them along too. A process that is killed loses what it had
not sent (at most FLUSH_SECONDS' worth); with several processes a key may get up to one flush
interval of requests past its limit. A normal exit sends the rest. `counting.flush` (the
Celery task `api.flush_check_counts`, every minute) moves the daily counts from Redis into
`api.models.CheckCount` exactly once, and the keys' last use onto their rows.

Which module holds what:

- `fast`: the URL's view, the fast path, and the read sent ahead.
- `views`: `CheckView`, the base of the two DRF check views (`subscriptions.api.views`).
- `middleware`: `ReadAheadMiddleware`.
- `snapshots`: the snapshot format, its three tiers, the response bodies and ETags.
- `store`: round trips: `Batch` (a pipeline, or plain cache calls on another cache), and
  the thread's own connection for the fast path's one read.
- `listener`: the revision listener and what it knows.
- `counters`: the in-process counts and their send to Redis.
- `counting`: counting checks, and their flush into the database; `tasks` runs it.
- `apps`: wires the listener to this process's own bumps and to the memory tier, and sends the
  counts at exit.
"""

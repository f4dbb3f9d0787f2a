"""Metered features' usage: what each customer consumed of each metered feature in each
period, counted and enforced atomically (docs/usage.md).

- `models.Consumption`: every accepted consumption, one row each: the durable record.
- `meter`: the count. Redis decides (a Lua script: the idempotency key, the limit and the
  increment in one atomic step) while PostgreSQL holds what was accepted; without Redis (the
  demo) the database alone decides.
- `api`: `consume` and `usage` endpoints, and the warm consume path.
- `selectors`: usage figures for the admin and the dashboard.
"""

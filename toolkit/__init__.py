"""The ground floor: small building blocks every app may use and that know nothing of the
domain (no imports from catalog, segments, subscriptions, audit or api)."""

"""The ground floor: small building blocks every app may use and that know nothing of the
domain (no imports from catalog, segments, subscriptions, api, reporting or bench; of audit,
only `toolkit.change_context`, itself ground floor). `lint-imports` checks it (pyproject.toml)."""

"""The benchmark of BENCHMARKS.md: `make bench`, or `python -m bench --help`.

- `stack`: the benchmark's own PostgreSQL database and Redis database, production settings,
  and the gunicorn servers it starts on 127.0.0.1 (and stops);
- `load`: wrk runs, each bounded in time, with generated Lua scripts;
- `measure`: what is counted inside one process (SQL queries, Redis round trips, admin
  changelists, the scheduled-change sweep, a plan change reaching the checks);
- `report`: the tables of BENCHMARKS.md from one run's results;
- `run`: the whole run, seeding N = 1k, then growing to 10k and 100k.

Nothing here is imported by the application, and the test suite never runs it.
"""

"""Load benchmark: the gateway against a minimal hand-written endpoint, on loopback.

Run it with `make bench` (or `.venv/bin/python -m bench --help` for the options). It

1. creates a fresh database `gql_bench_<random>` on the server named by `BENCH_DATABASE_URL`
   (default `postgresql://postgres@127.0.0.1:5432/postgres`), or on the embedded PostgreSQL
   when that server cannot be reached, migrates it and seeds one user with 200 domains and an
   API key through the project's own services;
2. starts two uvicorn subprocesses with the same settings (access log off): the gateway
   (`gql.app.create_app`) and the hand-written Starlette + asyncpg baseline (`bench.baseline`);
3. drives both from a third process (`bench.load`, keep-alive HTTP/1.1 over asyncio) with
   three workloads (REST `PATCH /api/email/domains/{id}`, the GraphQL mutation
   `updateEmailDomainStatus`, the query `emailDomains(first: 50)`) at concurrencies 1, 16
   and 64, each a warm-up followed by a timed run;
4. prints requests/s, p50 and p99 latency and the gateway/baseline throughput ratio, writes
   the results as JSON under `bench/results/`, stops the servers and drops the database.

The gateway runs with its production defaults except for what the benchmark sets (database,
access log off, a rate limit no run reaches); other settings can be changed through the usual
environment variables for an experiment, e.g. `DB_POOL_SIZE=32 make bench` (the baseline's
pool follows `DB_POOL_SIZE` and `DB_MAX_OVERFLOW` too), and are recorded in the JSON.

With `--profile`, py-spy (`pip install py-spy`; not a project dependency) samples the gateway
during its timed runs; the collapsed stacks and a summary of where the time went are written
beside the JSON (`python -m bench.stacks FILE` summarises such a file again). Profiled runs are
slower: read ratios from a run without it.
"""

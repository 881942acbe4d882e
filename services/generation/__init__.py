"""The generation service: paid AI generation jobs across providers.

api.py            the servicer: proto <-> the use cases, jobs as protobuf
jobs.py           use cases: create (hold, queue), read, cancel, finish
settlement.py     the holds after the fact: settle finished jobs, reap interrupted ones
domain.py         the rules, no I/O: kinds, statuses, options, hold expiry
store.py          the jobs table, which is also the work queue
queue.py          claiming jobs with leases (and why the queue is a table)
worker.py         one replica's workers: claim, renew the lease, run, finish
runner.py         one job on its provider: start, store the id, poll, store media
wallet_client.py  the wallet's holds, keyed by the job
events.py         `generation.job.*` through the outbox
settings.py       its KLIK_* settings: providers, models, prices, timings
background.py     the loops: workers, settler, reaper
service.py        the spec: servicer, migrations, background work
providers/        provider adapters (httpx);  sandbox/  the local provider sandbox
"""

"""The generation service: paid AI generation jobs across providers.

api.py       the servicer: proto <-> the use cases
jobs.py      use cases: create (hold, queue), read, cancel, finish, settle, reap
domain.py    the rules, no I/O: kinds, statuses, options, hold expiry
store.py     the jobs table, which is also the work queue
queue.py     claiming jobs with leases (and why the queue is a table)
worker.py    one replica's workers: claim, renew the lease, run, finish
runner.py    one job on its provider: start, store the id, poll, store media
holds.py     the wallet's holds, keyed by the job
events.py    `generation.job.*` through the outbox;  wire.py  jobs as protobuf
service.py   the spec: servicer, migrations, background work
providers/   provider adapters (httpx);  sandbox/  the local provider sandbox
"""

-- Run by the postgres image once, when its data volume is first initialised
-- (mounted into /docker-entrypoint-initdb.d by compose.yaml): one database per klik
-- service, because each service owns its database (ARCHITECTURE.md, rule 2).
-- The services create their own tables: migrations run when a service starts.
CREATE DATABASE klik_auth;
CREATE DATABASE klik_wallet;
CREATE DATABASE klik_generation;
CREATE DATABASE klik_content;

"""The auth service's tables (its own database only). The kit's outbox and
processed-events tables are added by the kit's own migration branch."""

from sqlalchemy import MetaData

metadata = MetaData()

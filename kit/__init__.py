"""The shared service kit: config, server bootstrap, database, outbox and event bus,
logging, errors. Every service and the gateway are built from these parts."""

"""The auth service: accounts, sessions, signing keys, roles."""

"""The HTTP/JSON gateway: the only door for public clients (API.md)."""

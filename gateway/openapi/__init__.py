"""The OpenAPI 3.1 document of the transcoded API, derived from the same descriptors
as the routes, and a human-readable page of it."""

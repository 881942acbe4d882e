"""`GET /docs`: the OpenAPI document as one self-contained HTML page (no scripts, no
CDN), rendered on the server: operations grouped by service, then every schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

from gateway.openapi.schemas import COMPONENTS

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:2px solid #ddd;margin-top:3rem}h3{margin:1.5rem 0 .3rem}
section.op{border:1px solid #ddd;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}
.m{display:inline-block;min-width:4.5rem;font:bold 13px monospace;color:#fff;
background:#555;border-radius:4px;padding:2px 6px;text-align:center}
.GET{background:#2b7bb9}.POST{background:#2f9e44}.PATCH{background:#e67700}
.DELETE{background:#c92a2a}.PUT{background:#7048e8}
.text{white-space:pre-wrap}table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #e5e5e5;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}code{font-size:13px}.auth{color:#666;font-size:13px}
"""


def render_page(spec: Mapping[str, Any]) -> str:
    info = spec["info"]
    title = escape(str(info["title"]))
    body = [f"<h1>{title} {escape(str(info['version']))}</h1>"]
    body.append(f"<p class='text'>{escape(str(info.get('description', '')))}</p>")
    body.append("<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>")
    tags = [t["name"] for t in spec.get("tags", [])]
    body.append("<ul>" + "".join(f"<li><a href='#{_id(t)}'>{escape(t)}</a></li>" for t in tags))
    body.append("<li><a href='#schemas'>Schemas</a></li></ul>")
    for tag in spec.get("tags", []):
        body.append(f"<h2 id='{_id(tag['name'])}'>{escape(tag['name'])}</h2>")
        body.append(f"<p class='text'>{escape(tag.get('description', ''))}</p>")
        for path, method, operation in _operations(spec):
            if operation.get("tags", [None])[0] == tag["name"]:
                body.append(_operation(path, method, operation))
    body.append("<h2 id='schemas'>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        body.append(_schema_section(name, schema))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method.upper(), operation


def _operation(path: str, method: str, operation: Mapping[str, Any]) -> str:
    out = [f"<section class='op' id='{_id(operation['operationId'])}'>"]
    out.append(f"<h3><span class='m {method}'>{method}</span> <code>{escape(path)}</code></h3>")
    public = operation.get("security") == []
    out.append(f"<div class='auth'>{'Public' if public else 'Bearer token'} · ")
    out.append(f"<code>{escape(str(operation.get('x-grpc-method', 'gateway')))}</code></div>")
    out.append(f"<p class='text'>{escape(operation.get('description', operation['summary']))}</p>")
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td>"
            f"<td>{_type(p['schema'])}</td><td class='text'>"
            f"{escape(p.get('description', ''))}</td></tr>"
            for p in parameters
        )
        out.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>"
            f"{rows}</table>"
        )
    body = operation.get("requestBody")
    if body:
        body_type, body_content = next(iter(body["content"].items()))
        schema = body_content["schema"]
        shown = (
            _type(schema)
            if body_type == "application/json"
            else f"<code>{escape(body_type)}</code>"
        )
        out.append(f"<p>Request body: {shown}</p>")
        if schema.get("type") == "object" and "properties" in schema:
            out.append(_properties(schema))
    media_type, content = next(iter(operation["responses"]["200"]["content"].items()))
    response = _type(content["schema"])
    if media_type != "application/json":
        response = f"<code>{escape(media_type)}</code>"
    out.append(f"<p>Response: {response}; errors: <a href='#schema-Error'>Error</a></p>")
    out.append("</section>")
    return "".join(out)


def _schema_section(name: str, schema: Mapping[str, Any]) -> str:
    out = [f"<h3 id='schema-{_id(name)}'><code>{escape(name)}</code></h3>"]
    if schema.get("description"):
        out.append(f"<p class='text'>{escape(schema['description'])}</p>")
    if "enum" in schema:
        out.append("<p>One of: " + ", ".join(f"<code>{escape(v)}</code>" for v in schema["enum"]))
    elif "properties" in schema:
        out.append(_properties(schema))
    return "".join(out)


def _properties(schema: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{_type(prop)}</td>"
        f"<td class='text'>{escape(prop.get('description', ''))}</td></tr>"
        for name, prop in schema["properties"].items()
    )
    return f"<table><tr><th>field</th><th>type</th><th>description</th></tr>{rows}</table>"


def _type(schema: Mapping[str, Any]) -> str:
    """A short human type: a link for references, `array of X`, `map of X`,
    `string (int64)`."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(COMPONENTS)
        return f"<a href='#schema-{_id(name)}'>{escape(name.rsplit('.', 1)[-1])}</a>"
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + _type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + _type(schema["additionalProperties"])
    if isinstance(kind, list):
        kind = " or ".join(kind)
    detail = schema.get("format") or (
        "one of " + ", ".join(schema["enum"]) if "enum" in schema else ""
    )
    return escape(f"{kind} ({detail})" if detail else str(kind))


def _id(name: str) -> str:
    return escape("".join(c if c.isalnum() or c in "-_." else "-" for c in name))

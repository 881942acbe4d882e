"""The README's table of file roles is the tree's: every file in a service is either a
role every service names the same way or a use-case/adapter module the README lists
for that service, and everything the README lists exists."""

from __future__ import annotations

import re

from tests.deploy.files import ROOT, SERVICES

README = (ROOT / "README.md").read_text()
IGNORED = {"__init__.py", "__pycache__"}


def _rows(header: str) -> list[list[str]]:
    """The rows of the markdown table whose header row starts with `header`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _names(cell: str) -> set[str]:
    return {name.rstrip("/") for name in re.findall(r"`([^`]+)`", cell)}


ROLES = {
    name
    for row in _rows("| file | role")
    for name in _names(row[0])
    if "<" not in name  # `<peer>_client.py` is a pattern
}
MODULES = {row[0]: _names(row[1]) for row in _rows("| service | its use-case")}


def _is_role(name: str) -> bool:
    return name in ROLES or name.endswith("_client.py")


def test_every_service_file_has_a_documented_role() -> None:
    undocumented = {
        f"services/{service}/{entry.name}"
        for service in SERVICES
        for entry in (ROOT / "services" / service).iterdir()
        if entry.name not in IGNORED
        and not _is_role(entry.name)
        and entry.name not in MODULES[service]
    }
    assert not undocumented, f"not in the README's table of roles: {sorted(undocumented)}"


def test_every_listed_module_exists_and_no_module_takes_a_role_name() -> None:
    assert set(MODULES) == set(SERVICES)
    for service, modules in MODULES.items():
        for name in modules:
            assert (ROOT / "services" / service / name).exists(), f"{service}/{name} is listed"
            assert not _is_role(name), f"{service}/{name} is a role name used as a module"

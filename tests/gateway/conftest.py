"""The gateway's test protos (tests/gateway/protos/), each compiled once per session
with grpc_tools' protoc into a temporary directory and imported from there:
test_routes.proto (every routing form) and test_options.proto (a throwaway public RPC
and event types, served with no edit outside the proto)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf.descriptor import ServiceDescriptor
from grpc_tools import protoc

from gateway.openapi.comments import load_comments
from gateway.transcoding.routes import Route, build_routes
from tests.gateway.stack import STACK_ADMIN, RunningStack, running_stack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass(frozen=True)
class RoutesContract:
    module: ModuleType  # the generated test_routes_pb2
    service: ServiceDescriptor
    comments: dict[str, str]

    def routes(self) -> list[Route]:
        return build_routes({"test": (self.service,)})

    def route(self, method: str, binding: int = 0) -> Route:
        for route in self.routes():
            if route.method.name == method and route.binding == binding:
                return route
        raise KeyError(f"{method} binding {binding}")


def compile_proto(proto: str, out: Path) -> tuple[ModuleType, dict[str, str]]:
    """Compile tests/gateway/protos/`proto` into `out`; its generated module and its
    comments (element full name -> comment)."""
    name = proto.removesuffix(".proto")
    descriptor_set = out / f"{name}.binpb"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{HERE / 'protos'}",
            f"-I{ROOT / 'protos'}",
            f"-I{resources.files('grpc_tools') / '_proto'}",
            f"--python_out={out}",
            f"--descriptor_set_out={descriptor_set}",
            "--include_source_info",
            proto,
        ]
    )
    assert code == 0, f"protoc failed on {proto}"
    sys.path.insert(0, str(out))
    try:
        module = importlib.import_module(f"{name}_pb2")
    finally:
        sys.path.remove(str(out))
    return module, load_comments(descriptor_set.read_bytes())


@pytest.fixture(scope="session")
def contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutesContract]:
    module, comments = compile_proto("test_routes.proto", tmp_path_factory.mktemp("routes"))
    yield RoutesContract(
        module=module,
        service=module.DESCRIPTOR.services_by_name["RouteTest"],
        comments=comments,
    )


@pytest.fixture(scope="session")
def throwaway(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The generated module of test_options.proto."""
    module, _ = compile_proto("test_options.proto", tmp_path_factory.mktemp("options"))
    return module


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Every real service and the gateway (`python -m stack`), shared by the tests
    that need the whole suite. The gateway's rate limits are off: the tests are one
    client at one address, and the fuzzer would see mostly 429s."""
    off = {
        f"KLIK_GATEWAY_{kind}_{cls}": "0"
        for kind, classes in (
            ("RATE", ("AUTH", "READ", "WRITE")),
            ("USER_RATE", ("READ", "WRITE")),
            ("PREMIUM_RATE", ("READ", "WRITE")),
        )
        for cls in classes
    }
    # The operator routes' test signs up as this admin (KLIK_ADMIN_EMAILS).
    off["KLIK_ADMIN_EMAILS"] = STACK_ADMIN
    with running_stack(tmp_path_factory.mktemp("stack"), **off) as running:
        yield running


# The fake services and the gateway in front of them (tests/gateway/fakes.py).
from tests.gateway.fakes import gateway, start_gateway, stream_upstream, upstream  # noqa: E402, F401

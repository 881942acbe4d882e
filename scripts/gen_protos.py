"""Generate the Python stubs of klik's protobuf contracts (`make proto`).

Compiles every ``.proto`` under ``protos/klik`` with grpc_tools' bundled protoc into
the ``klik/`` package at the repository root (``*_pb2.py``, ``*_pb2.pyi``,
``*_pb2_grpc.py``), writes an empty ``__init__.py`` in every generated package
directory, and deletes generated files whose proto no longer exists. It also writes
``klik/descriptors.binpb``, a FileDescriptorSet of the klik protos *with* source info:
the generated modules drop comments, and the gateway's OpenAPI document is written
from them. The vendored ``protos/google`` files are only an include path: at run time
``google.api`` comes from googleapis-common-protos.

    python scripts/gen_protos.py           # regenerate klik/
    python scripts/gen_protos.py --check   # exit 1 if klik/ is not what generation gives

``--check`` generates into a temporary directory and compares it with the files in
``klik/``, listing every stale (content differs), missing and extra file. Output is
deterministic: the same protos and grpcio-tools version give the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "klik"  # top-level directory of both the contracts and the generated stubs
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
DESCRIPTOR_SET = "descriptors.binpb"  # in klik/: the contracts with their comments


def proto_files() -> list[Path]:
    """Every klik contract, relative to ``protos/``, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE).rglob("*.proto"))


def is_generated(path: Path) -> bool:
    """Whether a file under ``klik/`` is one this script writes (and so may delete)."""
    return path.name in ("__init__.py", DESCRIPTOR_SET) or path.name.endswith(GENERATED_SUFFIXES)


def generate(out: Path) -> set[Path]:
    """Compile every contract into ``out``; return the written files relative to ``out``."""
    protos = proto_files()
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE}")
    well_known = resources.files("grpc_tools") / "_proto"
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--descriptor_set_out={out / PACKAGE / DESCRIPTOR_SET}",
        "--include_source_info",
        *(p.as_posix() for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed (see the messages above)")
    for proto in protos:
        # Every directory from klik/ down to the proto's package is a Python package.
        package_dir = proto.parent
        for directory in (package_dir, *package_dir.parents[:-1]):
            init = out / directory / "__init__.py"
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_bytes(b"")
    return generated_files(out)


def generated_files(root: Path) -> set[Path]:
    """The generated-looking files under ``root/klik``, relative to ``root``."""
    base = root / PACKAGE
    if not base.is_dir():
        return set()
    return {
        p.relative_to(root)
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and is_generated(p)
    }


def prune(root: Path, stale: set[Path]) -> None:
    """Delete stale generated files and the package directories they leave empty."""
    for rel in sorted(stale):
        (root / rel).unlink()
        print(f"deleted stale {rel.as_posix()}")
    base = root / PACKAGE
    # Deepest first, so a parent emptied by its children's removal goes too.
    for directory in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
        if directory.name == "__pycache__" or not directory.exists():
            continue
        leftovers = [p for p in directory.iterdir() if p.name != "__pycache__"]
        if not leftovers:
            shutil.rmtree(directory)


def write() -> int:
    with tempfile.TemporaryDirectory(prefix="klik-proto-") as tmp:
        fresh_root = Path(tmp)
        fresh = generate(fresh_root)
        current = generated_files(ROOT)
        for rel in sorted(fresh):
            target = ROOT / rel
            data = (fresh_root / rel).read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        prune(ROOT, current - fresh)
    print(f"generated {len(fresh)} files from {len(proto_files())} protos into {PACKAGE}/")
    return 0


def check() -> int:
    with tempfile.TemporaryDirectory(prefix="klik-proto-") as tmp:
        fresh_root = Path(tmp)
        fresh = generate(fresh_root)
        current = generated_files(ROOT)
        missing = sorted(fresh - current)
        extra = sorted(current - fresh)
        stale = sorted(
            rel
            for rel in fresh & current
            if (fresh_root / rel).read_bytes() != (ROOT / rel).read_bytes()
        )
    for label, paths in (("stale", stale), ("missing", missing), ("extra", extra)):
        for rel in paths:
            print(f"{label}: {rel.as_posix()}")
    if stale or missing or extra:
        print("generated stubs are out of date: run `make proto` and commit the result")
        return 1
    print(f"generated stubs are up to date ({len(fresh)} files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare klik/ with a fresh generation; exit 1 listing differences",
    )
    args = parser.parse_args(argv)
    return check() if args.check else write()


if __name__ == "__main__":
    sys.exit(main())

"""Build hook: generates riffle_client/v1/riffle_pb2*.py from proto/riffle/v1/riffle.proto.

The .proto file in the repository is the single source of truth of the API, so the stubs are
never committed: every build (``pip install clients/python``) runs grpcio-tools' protoc on it,
as CMake does for the C++ server (proto/CMakeLists.txt). Everything else about the package is
declared in pyproject.toml.

Where the proto is looked for, first match wins:
  1. $RIFFLE_PROTO_DIR (a directory holding riffle/v1/riffle.proto);
  2. ../../proto, i.e. the repository, when building from clients/python in a checkout;
  3. ./proto, the copy an sdist carries (``python -m build --sdist`` puts it there).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO_FILE = Path("riffle/v1/riffle.proto")
PACKAGE_DIR = Path("riffle_client/v1")
GENERATED = ("riffle_pb2.py", "riffle_pb2.pyi", "riffle_pb2_grpc.py")


def find_proto_root() -> Path:
    candidates = []
    if os.environ.get("RIFFLE_PROTO_DIR"):
        candidates.append(Path(os.environ["RIFFLE_PROTO_DIR"]))
    candidates += [HERE.parent.parent / "proto", HERE / "proto"]
    for root in candidates:
        if (root / PROTO_FILE).is_file():
            return root
    raise RuntimeError(
        f"riffle-client build: cannot find {PROTO_FILE} in any of "
        f"{', '.join(str(c) for c in candidates)} (set RIFFLE_PROTO_DIR)"
    )


def generate(out_dir: Path) -> None:
    """Runs protoc on the proto and writes the stubs into out_dir/riffle_client/v1/."""
    import importlib.resources

    from grpc_tools import protoc

    proto_root = find_proto_root()
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    scratch = out_dir / "_riffle_protoc"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={scratch}",
        f"--pyi_out={scratch}",
        f"--grpc_python_out={scratch}",
        str(proto_root / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"riffle-client build: protoc failed on {proto_root / PROTO_FILE}")
    target = out_dir / PACKAGE_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        text = (scratch / "riffle/v1" / name).read_text()
        # protoc writes absolute imports that follow the proto path ("from riffle.v1 import
        # riffle_pb2"); the stubs live inside riffle_client.v1, so make them relative. The
        # descriptor keeps its file name "riffle/v1/riffle.proto", as the server registers it.
        text = re.sub(r"^from riffle\.v1 import ", "from . import ", text, flags=re.M)
        (target / name).write_text(text)
    shutil.rmtree(scratch)


class BuildPyWithProto(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib))


class SdistWithProto(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        dest = Path(base_dir) / "proto" / PROTO_FILE
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(find_proto_root() / PROTO_FILE, dest)


setup(cmdclass={"build_py": BuildPyWithProto, "sdist": SdistWithProto})

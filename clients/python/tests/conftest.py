"""Fixtures: real `riffle serve` processes on loopback (port 0 + ready file), torn down with SIGTERM.

The binary is --riffle-binary, else $RIFFLE_BINARY, else <repo>/build/release/service/riffle.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from riffle_client import Client

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--riffle-binary", default=None,
                     help="riffle executable (default: $RIFFLE_BINARY or build/release/service/riffle)")


@pytest.fixture(scope="session")
def riffle_binary(pytestconfig: pytest.Config) -> Path:
    given = (pytestconfig.getoption("--riffle-binary") or os.environ.get("RIFFLE_BINARY")
             or str(REPO / "build/release/service/riffle"))
    path = Path(given).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"riffle binary not found or not executable: {path} "
                    "(build it, or pass --riffle-binary / RIFFLE_BINARY)", pytrace=False)
    return path


class ServerProcess:
    """One `riffle serve` child process. start() returns once the ready file names the bound
    address; stop() sends SIGTERM and returns the exit code (the server checkpoints on exit)."""

    def __init__(self, binary: Path, workdir: Path, args: list[str]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.args = args
        self.ready_file = workdir / "ready"
        self.log_file = workdir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.target = ""

    def start(self) -> "ServerProcess":
        self.ready_file.unlink(missing_ok=True)
        cmd = [str(self.binary), "serve", "--listen", "127.0.0.1:0",
               "--ready-file", str(self.ready_file), *self.args]
        with open(self.log_file, "ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None  # reported here, not at stop()
                raise RuntimeError(f"riffle serve exited with {code} before it was ready:\n"
                                   f"{self.log()}")
            if self.ready_file.exists():
                text = self.ready_file.read_text().strip()
                if text:
                    self.target = text
                    return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"riffle serve was not ready within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code (0: clean stop with final checkpoints)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"riffle serve ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{self.log()}")
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def client(self, **kwargs) -> Client:
        return Client(self.target, **kwargs)


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(riffle_binary: Path, tmp_path: Path) -> Iterator[StartServer]:
    """Factory: start_server(*extra_args, checkpoint_dir=None, name="server"). Every server it
    started is stopped with SIGTERM at teardown and must exit 0."""
    started: list[ServerProcess] = []
    counter = itertools.count()

    def start(*args: str, checkpoint_dir: Optional[Path] = None, name: Optional[str] = None) -> ServerProcess:
        workdir = tmp_path / (name or f"server{next(counter)}")
        workdir.mkdir(parents=True, exist_ok=True)
        ckpt = checkpoint_dir or (tmp_path / "checkpoints")
        server = ServerProcess(riffle_binary, workdir, ["--checkpoint-dir", str(ckpt), *args])
        started.append(server)
        return server.start()

    yield start
    failures = []
    for server in started:
        code = server.stop()
        if code != 0:
            failures.append(f"riffle serve exited with {code}:\n{server.log()}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture(scope="module")
def shared_server(riffle_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One plaintext server without a token for the tests that only need a fresh model each."""
    workdir = tmp_path_factory.mktemp("shared")
    server = ServerProcess(riffle_binary, workdir,
                           ["--checkpoint-dir", str(workdir / "checkpoints"),
                            # Only explicit checkpoints, so generations are predictable.
                            "--checkpoint-every-seconds", "0", "--checkpoint-every-events", "0"])
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"riffle serve exited with {code}:\n{server.log()}"


@pytest.fixture
def client(shared_server: ServerProcess) -> Iterator[Client]:
    with shared_server.client() as c:
        yield c


_names = itertools.count()


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A model name unique in the session, readable in the server's log."""
    base = re.sub(r"[^a-zA-Z0-9_.-]", "_", request.node.name)[:100]
    return f"{base}.{next(_names)}"

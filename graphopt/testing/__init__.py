"""Test and benchmark machinery: a scripted fake model and an OpenAI-compatible stub server.

Not part of the runtime LLM surface: unit tests answer from `FakeModel` (a list of replies, a
prompt-substring map or a function), retry and parameter tests talk to `StubServer` over real
HTTP on 127.0.0.1. The stub server needs aiohttp (installed with graphopt) and runs from a shell
with `python -m graphopt.testing.stub_server`.
"""

from .fake import FakeModel

__all__ = ["FakeModel", "StubServer", "Failure"]


def __getattr__(name: str):
    # The stub server pulls in aiohttp's web server: imported when asked for, not with FakeModel.
    if name in ("StubServer", "Failure"):
        from . import stub_server

        return getattr(stub_server, name)
    raise AttributeError(f"module 'graphopt.testing' has no attribute {name!r}")

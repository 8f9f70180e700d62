"""Kept for imports and `python -m graphopt.lm.stub_server`: the stub server is graphopt.testing.stub_server."""

from ..testing.stub_server import Failure, StubServer, main

__all__ = ["Failure", "StubServer", "main"]

if __name__ == "__main__":
    main()

"""Reliability tests reuse the real-kernel harness."""

from tests.kernel.conftest import kernel

__all__ = ["kernel"]

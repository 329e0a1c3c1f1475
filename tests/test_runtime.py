"""The allocator tuning the ``prover`` command applies (speed only, no result changes)."""

from __future__ import annotations

import platform
import sys

import pytest

from prover.runtime import tune_allocator


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_glibc_accepts_the_thresholds():
    assert tune_allocator() is True


def test_elsewhere_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert tune_allocator() is False

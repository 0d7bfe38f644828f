"""No core dumps by default: a crash's core file would hold unscrubbed payloads (issue 15 #14)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .support import free_port, relay_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")


def _core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError("no core limit")


def test_forbid_core_dumps_in_a_fresh_process() -> None:
    """RLIMIT_CORE 0 (hard too) and not dumpable; what a child inherits and what a spawned child redoes."""
    code = textwrap.dedent(
        """
        import resource
        from relay.coredumps import dumpable, forbid_core_dumps
        assert dumpable() is True
        assert forbid_core_dumps() == []
        print(resource.getrlimit(resource.RLIMIT_CORE), dumpable())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(0, 0) False"


@pytest.mark.parametrize(("extra", "expected"), [("", "0 0"), ("core_dumps: true\n", None)])
def test_relay_run_turns_core_dumps_off_unless_opted_in(tmp_path: Path, extra: str, expected: str | None) -> None:
    port = free_port()
    config = tmp_path / "relay.yml"
    config.write_text(f"listen: {{host: 127.0.0.1, port: {port}}}\nupstream: {{url: 'http://127.0.0.1:9'}}\n{extra}")
    with relay_process(config, port) as proc:
        before = _core_limit(os.getpid())  # the system's own, which the relay inherited
        assert _core_limit(proc.pid) == (expected or before)

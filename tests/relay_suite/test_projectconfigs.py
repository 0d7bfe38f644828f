"""Port of getsentry/relay `tests/integration/test_projectconfigs.py` as black-box tests of this relay.

Relay source read at commit a586984003ef0b8fb6e14e54e24caf49d691b250.

Every test there calls `/api/0/relays/projectconfigs/`, which a Relay serves to downstream Relays that registered
with signed credentials. This relay serves no project configs and holds no relay credentials.
"""

from __future__ import annotations

import pytest


@pytest.mark.skip(reason="serving project configs to registered downstream relays (signed requests): not a proxy's job")
def test_dynamic_relays() -> None:
    """Skipped: serving project configs to registered downstream relays (signed requests): not a proxy's job."""


@pytest.mark.skip(reason="serving project configs to registered downstream relays (signed requests): not a proxy's job")
def test_invalid_json() -> None:
    """Skipped: serving project configs to registered downstream relays (signed requests): not a proxy's job."""


@pytest.mark.skip(reason="serving project configs to registered downstream relays (signed requests): not a proxy's job")
def test_invalid_signature() -> None:
    """Skipped: serving project configs to registered downstream relays (signed requests): not a proxy's job."""


@pytest.mark.skip(reason="serving project configs to registered downstream relays (signed requests): not a proxy's job")
def test_broken_projectkey() -> None:
    """Skipped: serving project configs to registered downstream relays (signed requests): not a proxy's job."""

"""Client reports: an SDK's discard counts, rebuilt from the fields the format has and nothing else.

The format is Sentry's `ClientReport`: an optional `timestamp` (Unix seconds or an RFC 3339 string) and up to
four lists (`discarded_events`, `rate_limited_events`, `filtered_events`, `filtered_sampling_events`) of
`{"reason", "category", "quantity"}` (or `[reason, category, quantity]`, as old SDKs write it). They hold
counts, not personal data, so instead of scanning them we keep only those fields, and only where `reason` and
`category` are short names (`before_send`, `log_byte`, `Sampled:3,4`) no rule would touch and `quantity` is a
count, and at most MAX_ENTRIES entries per list. Everything else is dropped and reported as a redaction by
`client_report.schema`, so it shows in the metrics and the audit log like any other.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .audit import Redaction
from .engine import Scrubber, ScrubError

OUTCOME_LISTS = ("discarded_events", "rate_limited_events", "filtered_events", "filtered_sampling_events")
RULE_ID = "client_report.schema"
_ROOT = "@client_report"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:,-]{0,63}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?")
_MAX_QUANTITY = 2**32 - 1  # Sentry reads quantities as u32
# Entries per list: an SDK sends one per (reason, category), a few dozen; past this the rest is dropped unread.
MAX_ENTRIES = 1000


def clean_client_report(payload: Any, scrubber: Scrubber) -> tuple[dict[str, Any], list[Redaction]]:
    """The report rebuilt from its valid fields, and one redaction per kind of thing dropped (by path)."""
    if not isinstance(payload, dict):
        raise ScrubError("client_report payload is not a JSON object")
    clean: dict[str, Any] = {}
    dropped: dict[str, None] = {}  # paths, in order, once each: a flood of bad entries is one redaction
    for key, value in payload.items():
        if key == "timestamp":
            if _is_timestamp(value):
                clean[key] = value
            else:
                dropped["timestamp"] = None
        elif key in OUTCOME_LISTS:
            if not isinstance(value, list):
                dropped[key] = None
                continue
            entries = value[:MAX_ENTRIES]
            kept = [outcome for outcome in (_outcome(entry, scrubber) for entry in entries) if outcome is not None]
            if len(kept) < len(value) or any(len(entry) != 3 for entry in entries if isinstance(entry, dict)):
                dropped[key] = None
            clean[key] = kept
        else:
            dropped["(unknown field)"] = None  # never the key itself: it is the client's text
    return clean, [Redaction("client_report", path, RULE_ID, "remove") for path in dropped]


def _is_timestamp(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value) and value >= 0
    return isinstance(value, str) and _TIMESTAMP.fullmatch(value) is not None


def _outcome(entry: Any, scrubber: Scrubber) -> dict[str, Any] | None:
    """`{reason, category, quantity}` from a valid entry (unknown fields left out), else None. Old SDKs write an
    entry as a list, `[reason, category, quantity]`; Sentry reads that form too, and so it is rebuilt here."""
    if isinstance(entry, list) and len(entry) == 3:
        reason, category, quantity = entry
    elif isinstance(entry, dict):
        reason, category, quantity = entry.get("reason"), entry.get("category"), entry.get("quantity")
    else:
        return None
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= _MAX_QUANTITY:
        return None
    if not (_is_name(reason, scrubber) and _is_name(category, scrubber)):
        return None
    return {"reason": reason, "category": category, "quantity": quantity}


def _is_name(value: Any, scrubber: Scrubber) -> bool:
    # The shape rules out addresses; the rules check what it can't (a card number after a letter).
    return isinstance(value, str) and _NAME.fullmatch(value) is not None and scrubber.scrub_text(value, _ROOT) == value


__all__ = ["OUTCOME_LISTS", "RULE_ID", "clean_client_report"]

"""A new string's result in Python: the twin of the C compute (_compute.c, _spans.c), and its fallback.

`Compute` is a part of `Scrubber` (engine.py): where the rules match in a string, which matches win, and
the string's new value and `_meta` remarks.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from ..rules.keys import normalize_key
from ..rules.model import Rule
from .detectors import fired
from .encoded import PERCENT_ESCAPE, percent_decode
from .meta import PLACEHOLDER, propagates
from .plans import (
    _CACHE_LIMIT,
    _HASH,
    _KEEP,
    _MASK,
    _REMOVE,
    _REPLACE,
    _UNCHANGED,
    MAX_SPANS,
    Remark,
    ScrubError,
    _Family,
    _Plan,
    _Result,
)

# key=value pairs inside strings: query strings, form bodies, log lines. A key begins the string or follows
# one of `?&;,` or whitespace. Consuming that separator (rather than looking behind for it) lets the regex
# engine skip ahead to separators in C. The pairs found are the same: a value runs up to a character that
# can't be in a value, and a key's first letter can, so a key's separator always comes after the previous
# pair. The pair at the very start is matched on its own (see _key_values).
_KEY_VALUE = re.compile(r"[?&;,\s]([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")
_FIRST_KEY_VALUE = re.compile(r"([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")
# printf and format placeholders in message templates: `password=%s` is not a password.
# So are references to a variable or a template's field: ${DB_PASSWORD}, {{ secrets.token }}, %API_KEY%, $API_KEY,
# $1, @TOKEN@.
_TEMPLATE = re.compile(
    r"%(?:\([\w.]+\))?[-+ #0-9.]*[sdifrxXeEgGcaou]|\{[\w.]*(?::[^}]*)?\}"
    r"|\$\{[^{}]{1,256}\}|\{\{.{0,256}\}\}|%[A-Za-z_][A-Za-z0-9_]{0,127}%|\$[A-Z_][A-Z0-9_]{0,127}"
    r"|\$[a-z_]{1,127}|\$\d{1,64}|@(?:[A-Z_]{1,127}|[a-z_]{1,127})@",  # gitleaks' global allowlist: $1, $var, @VAR@
    re.DOTALL,
)
# Whole strings that no built-in detector can match inside: timestamps, UUIDs and short numbers.
# They are most of what an event's unseen strings are, so they skip the detectors in one C-level test.
_SAFE_SHAPE = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|-?\d{1,6}(?:\.\d+)?"
)


class Compute:
    """The Python compute of a Scrubber (its state is the Scrubber's: see engine.Scrubber.__init__)."""

    _pause: float
    _last_pause: float
    _deadline: float
    _time_limit: float
    _hash_key: bytes
    _order: dict[int, int]
    _infos: dict[int, tuple[Any, ...]]
    _key_names: dict[tuple[tuple[Rule, ...], str], Rule | None]
    _compiled: Callable[[str, _Plan], _Result] | None
    _checkpoint: Callable[[], None]

    def _yield_gil(self) -> None:
        now = time.perf_counter()
        if now - self._last_pause >= 0.001:
            time.sleep(self._pause)
            self._last_pause = time.perf_counter()
            self._deadline += self._last_pause - now  # pauses don't count against the time bound

    def _compute(self, text: str, plan: _Plan) -> _Result:
        """The result for a string not memoized: in C (`Walker.compute`) where the plan allows it."""
        if plan.spec is not None and self._compiled is not None:
            return self._compiled(text, plan)  # (which hands percent-encoded text to _compute_encoded)
        return self._compute_python(text, plan)

    def _compute_encoded(self, text: str, plan: _Plan) -> _Result:
        """A percent-encoded string: the rules look at the decoded text, and what they find is replaced in the
        encoded one (`anna%40gmx.de` goes whole). They look at the text as written too: decoding can break what
        the escapes kept whole (a password with `%2F` or `%09` in a URL's user part is one run only encoded)."""
        decoded, index = percent_decode(text)
        if self._pause:
            self._yield_gil()
        spans = [(index[start], index[end], rule) for start, end, rule in self._labelled_spans(decoded, plan)]
        spans.extend(self._labelled_spans(text, plan))
        if not spans:
            return _UNCHANGED
        return self._result(text, spans, plan)

    def _compute_python(self, text: str, plan: _Plan) -> _Result:
        if "%" in text and PERCENT_ESCAPE.search(text) is not None:
            return self._compute_encoded(text, plan)
        if self._pause:
            self._yield_gil()
        spans = self._labelled_spans(text, plan)
        if not spans:
            return _UNCHANGED
        return self._result(text, spans, plan)

    def _labelled_spans(self, text: str, plan: _Plan) -> list[tuple[int, int, Rule]]:
        """`_spans`, reading the text after the key that names it where that key is a label (`{"cpf": ...}`)."""
        label = plan.label
        if label is None:
            return self._spans(text, plan)
        size = len(label)
        return [(a - size, b - size, rule) for a, b, rule in self._spans(label + text, plan) if a >= size]

    def _spans(self, text: str, plan: _Plan) -> list[tuple[int, int, Rule]]:
        """Where the plan's rules match in `text`: detectors, user patterns and key=value pairs."""
        spans: list[tuple[int, int, Rule]] = []
        if _SAFE_SHAPE.fullmatch(text) is None:
            families = plan.families
            if families:
                triggered = fired(text)  # every family's cheap test, in one call
                for family in families:
                    if family.bit & triggered:
                        spans.extend(self._detector_spans(text, family))
        elif not plan.pattern_rules:
            return spans
        for rule in plan.pattern_rules:
            spans.extend(self._pattern_spans(rule, text))
        if plan.key_rules and "=" in text:
            for match in _key_values(text):
                key_rule = self._key_rule_for(match.group(1), plan)
                value = match.group(2)
                if key_rule is not None and not PLACEHOLDER.fullmatch(value) and not _TEMPLATE.fullmatch(value):
                    spans.append((match.start(2), match.end(2), key_rule))
        if len(spans) > MAX_SPANS:
            raise ScrubError(f"more than {MAX_SPANS} matches in one string")
        return spans

    def _result(self, text: str, spans: list[tuple[int, int, Rule]], plan: _Plan) -> _Result:
        """The string's new value and remarks from the spans the rules found (the earlier rule wins overlaps)."""
        if "[" in text:  # never scrub inside a placeholder an earlier pass wrote (idempotency)
            written = [m.span() for m in PLACEHOLDER.finditer(text)]
            if written:  # (they don't overlap: their ends rise with their starts, so one bisect per span)
                ends = [b for _, b in written]
                spans = [s for s in spans if not _touches(written, ends, s[0], s[1])]
                if not spans:
                    return _UNCHANGED
        if plan.keep_rules:
            kept = self._keep_spans(text, plan.keep_rules)
            spans = [s for s in spans if not any(s[0] < b and a < s[1] for a, b in kept)]
            if not spans:
                return _UNCHANGED
        for _, _, rule in spans:
            if rule.action.type is _REMOVE and rule.keys is None:
                return _Result(None, [[rule.id, "x"]])  # detectors and patterns remove the whole value
        accepted: list[tuple[int, int, Rule]] = []
        if len(spans) == 1:  # the usual case: nothing can overlap
            if not PLACEHOLDER.fullmatch(text, spans[0][0], spans[0][1]):
                accepted = spans
        else:
            # Where two spans overlap, the earlier rule wins.
            order = self._order
            spans.sort(key=lambda s: (order[id(s[2])], s[0]))
            for span in spans:
                if not PLACEHOLDER.fullmatch(text, span[0], span[1]) and not any(
                    span[0] < b and a < span[1] for a, b, _ in accepted
                ):
                    accepted.append(span)
            accepted.sort()  # by start: accepted spans don't overlap, so no two starts are equal
        if any(rule.action.type is _KEEP for _, _, rule in accepted):  # keep rules won their overlaps: no change
            accepted = [span for span in accepted if span[2].action.type is not _KEEP]
        out: list[str] = []
        remarks: list[Remark] = []
        found: list[tuple[str, tuple[str, str, str]]] = []
        cursor = 0
        length = 0
        for start, end, rule in accepted:
            original = text[start:end]
            replacement, kind = self._apply(original, rule)
            out.append(text[cursor:start])
            length += start - cursor
            out.append(replacement)
            remarks.append([rule.id, kind, length, length + len(replacement)])
            if propagates(original):
                found.append((original.strip("'\""), (replacement, rule.id, kind)))
            length += len(replacement)
            cursor = end
        if not remarks:
            return _UNCHANGED
        out.append(text[cursor:])
        return _Result("".join(out), remarks, found)

    def _detector_spans(self, text: str, family: _Family) -> list[tuple[int, int, Rule]]:
        """One scan with the family's combined regex, only where a match can be.

        A candidate a validator rejects (a Luhn-invalid order id, a date) doesn't end the search: every
        detector of the family is tried anchored at the same place, then the scan goes on one character
        further, so a real value inside or right after a look-alike is still found.
        """
        spans: list[tuple[int, int, Rule]] = []
        ranges = [(0, len(text))] if family.windows is None else self._ranges(text, family)
        if not ranges:
            return spans
        pattern = family.pattern
        members = family.members
        starts = None
        haystack = text
        if family.starts is not None:
            starts, lowercase = family.starts
            if lowercase:
                if text.isascii():
                    haystack = text.lower()  # ASCII only: positions don't move
                else:
                    starts = None
        done = tried = 0
        for low, high in ranges:
            pos = low if low > done else done
            while pos < high:
                tried += 1
                if tried % 64 == 0:  # the time bound inside one string (as the C compute does)
                    self._checkpoint()
                if starts is not None:
                    # Try the combined regex only where a match can begin: the same leftmost match as
                    # `pattern.search`, without running every alternative at every position in between.
                    candidate = starts.search(haystack, pos, high)
                    if candidate is None:
                        break
                    match = pattern.match(text, candidate.start(), high)
                    if match is None:
                        pos = candidate.start() + 1
                        continue
                else:
                    match = pattern.search(text, pos, high)
                    if match is None:
                        break
                member = members[match.lastindex or 0]  # the detector's outer group closes last
                assert member is not None
                rule, validate, secret = member
                if validate is None or validate(match.group()):
                    begin, finish = match.span(secret)
                    end = match.end()
                else:
                    found = _alternative(text, match.start(), family.rules, rule, match.group())
                    if found is None:
                        pos = match.start() + 1
                        continue
                    begin, finish, end, rule = found
                if finish > begin:
                    spans.append((begin, finish, rule))
                pos = done = max(end, match.start() + 1)
        return spans

    def _key_info_for(self, name: str, plan: _Plan) -> tuple[Any, ...] | None:
        """`_key_rule_for` for the C compute: the rule's info, or None."""
        rule = self._key_rule_for(name, plan)
        return None if rule is None else self._infos[id(rule)]

    @staticmethod
    def _ranges(text: str, family: _Family) -> list[tuple[int, int]]:
        """Where the family's matches can be: the whole text, or windows around its runs (merged)."""
        if family.windows is None:
            return [(0, len(text))]
        runs, before, after, worth = family.windows
        size = len(text)
        ranges: list[tuple[int, int]] = []
        for run in runs.finditer(text):
            start, end = run.span()
            if not worth(text, start, end):
                continue
            low = start - before if start > before else 0
            high = end + after if end + after < size else size
            if ranges and low <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(high, ranges[-1][1]))
            else:
                ranges.append((low, high))
        return ranges

    def _pattern_spans(self, rule: Rule, text: str) -> list[tuple[int, int, Rule]]:
        assert rule.pattern is not None
        # (outside a scrub, as in `relay rules explain`, there is no deadline: the configured bound applies)
        deadline = self._deadline if self._deadline != math.inf else time.perf_counter() + self._time_limit
        remaining = max(0.001, deadline - time.perf_counter())
        try:
            return [
                (m.start(rule.group), m.end(rule.group), rule)
                for m in rule.pattern.finditer(text, timeout=remaining)
                if m.end(rule.group) > m.start(rule.group)
            ]
        except TimeoutError:
            raise ScrubError(f"rule {rule.id} timed out (catastrophic backtracking?)") from None

    def _keep_spans(self, text: str, rules: tuple[Rule, ...]) -> list[tuple[int, int]]:
        kept: list[tuple[int, int]] = []
        for rule in rules:
            if rule.detector is not None:
                kept.extend(rule.detector.find(text))
            else:
                kept.extend((a, b) for a, b, _ in self._pattern_spans(rule, text))
        return kept

    def _key_rule_for(self, name: str, plan: _Plan) -> Rule | None:
        cache_key = (plan.key_rules, name)
        if cache_key in self._key_names:
            return self._key_names[cache_key]
        normalized = normalize_key(name)
        found = None
        for rule in plan.key_rules:
            if rule.keys is not None and rule.keys.fullmatch(normalized):
                found = rule
                break
        if len(self._key_names) > _CACHE_LIMIT:
            self._key_names.clear()
        self._key_names[cache_key] = found
        return found

    def _apply(self, original: str, rule: Rule) -> tuple[str, str]:
        action = rule.action
        kind = action.type
        if kind is _REPLACE:
            return rule.placeholder, "s"
        if kind is _REMOVE:  # a key=value pair inside a string: drop the value only
            return "", "x"
        if kind is _MASK:
            keep = min(action.keep_last, len(original))
            return action.mask_char * (len(original) - keep) + original[len(original) - keep :], "m"
        if kind is _HASH:
            digest = hmac.new(self._hash_key, original.encode(), hashlib.sha256).hexdigest()[:32]
            return f"[hash:{digest}]", "p"
        return rule.placeholder, "s"


def _alternative(
    text: str, start: int, rules: Sequence[Rule], rejected: Rule, candidate: str
) -> tuple[int, int, int, Rule] | None:
    """The first detector (in rule order) with a valid match at `start`, or a valid shorter prefix of one:
    (begin, end) of its sensitive part, where the match ends, and the rule.

    `rejected`'s validator has just turned down `candidate` here: it isn't asked again (validators are
    pure, and the Luhn and issuer checks of a long digit run are the costly part of this path).
    """
    for rule in rules:
        detector = rule.detector
        assert detector is not None
        own = detector.pattern.match(text, start)
        if own is None:
            continue
        if detector.validate is not None:
            value = own.group()
            if (rule is rejected and value == candidate) or not detector.validate(value):
                shorter = detector.shorter(own, text)
                if shorter is None:
                    continue
                own = shorter
        begin, finish = own.span("secret") if detector.has_secret_group else own.span()
        return begin, finish, own.end(), rule
    return None


def _touches(written: list[tuple[int, int]], ends: list[int], start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of the `written` spans (sorted, not overlapping; `ends` their ends)."""
    index = bisect_right(ends, start)
    return index < len(written) and written[index][0] < end


def _key_values(text: str) -> list[re.Match[str]]:
    """The key=value pairs in `text`, in order (groups 1 and 2: key and value)."""
    first = _FIRST_KEY_VALUE.match(text)
    if first is None:
        return list(_KEY_VALUE.finditer(text))
    return [first, *_KEY_VALUE.finditer(text, first.end())]

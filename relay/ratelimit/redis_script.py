"""The quota Lua script, and the keys and arguments of one call to it.

Every key the script touches is declared in `KEYS`, as Redis Cluster (and any proxy that routes by key) requires.
A window counter's name holds its slot, which depends on Redis's clock (`TIME`), so the caller can't know it
exactly before the call: it declares the counter of every slot the script may run in (one, or two near a slot
boundary; see `ServerClock`), and the script picks the one for its own time. If its slot isn't among them
(a clock that jumped, a call that waited too long) it writes nothing and answers with its time alone, and the
caller asks again with that time.

Keys (`<prefix>` is `ratelimit.key_prefix`, `<key>` a `QuotaCheck.key`; on a cluster the key's first
`:`-separated field, the project, is a hash tag, `{42}:errors:project:42`, so one envelope's keys share a slot):

- `<prefix>:q:<key>:<window>:<slot>`: units used in one window slot; expires at the end of the slot (+1 s).
- `<prefix>:b:<key>:<window>`: the burst bucket's theoretical arrival time (GCRA), as a decimal string;
  expires once the bucket would be full again (+1 s).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .quota import QuotaCheck

MARGIN_MS = 1000  # keys outlive their slot or bucket a little, so no decision ever reads a key mid-expiry

# KEYS: per check, the burst key, then the window counter of each candidate slot (consecutive slots).
# ARGV: now ('' for the server's TIME), expiry margin (ms), number of groups G, the number of checks in each
# of the G groups, then per check: limit, window, burst (-1: none), quantity, first candidate slot, candidates.
# Returns the time the script decided at ('%.17g'), then one string per group: '0' if accepted, else the seconds
# to wait ('%.17g', as Redis would truncate a Lua number to an integer); or the time alone if a check's slot was
# not among its candidates, having written nothing. Mirrors `MemoryQuotaBackend.consume_now` line by line.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local stamp = string.format('%.17g', now)
local margin = tonumber(ARGV[2])
local ngroups = tonumber(ARGV[3])
local total = 0
for g = 1, ngroups do total = total + tonumber(ARGV[3 + g]) end
local checks = {}
local a = 3 + ngroups
local k = 0
for c = 1, total do
  local window = tonumber(ARGV[a + 2])
  local slot = math.floor(now / window)
  local index = slot - tonumber(ARGV[a + 5])
  local candidates = tonumber(ARGV[a + 6])
  if index < 0 or index >= candidates then return {stamp} end
  checks[c] = {tonumber(ARGV[a + 1]), window, tonumber(ARGV[a + 3]), ARGV[a + 4], KEYS[k + 1], KEYS[k + 2 + index]}
  k = k + 1 + candidates
  a = a + 6
end
local results = {stamp}
local c = 0
for g = 1, ngroups do
  local wait = 0
  local counters = {}
  local tats = {}
  for _ = 1, tonumber(ARGV[3 + g]) do
    c = c + 1
    local limit, window, burst, quantity, bkey, qkey = unpack(checks[c])
    local units = tonumber(quantity)
    local slot = math.floor(now / window)
    local left = (slot + 1) * window - now
    local used = tonumber(redis.call('GET', qkey) or '0')
    if used + units > limit then wait = math.max(wait, left) end
    counters[#counters + 1] = {qkey, quantity, left}
    if burst >= 0 then
      local stored = redis.call('GET', bkey)
      local tat = now
      if stored then tat = tonumber(stored) end
      local interval = math.huge
      if limit > 0 then interval = window / limit end
      if units > burst or interval == math.huge then
        wait = math.max(wait, window)
      else
        local new_tat = math.max(tat, now) + units * interval
        local allowed_at = new_tat - burst * interval
        if allowed_at <= now then
          tats[#tats + 1] = {bkey, new_tat, window}
        else
          wait = math.max(wait, allowed_at - now)
        end
      end
    end
  end
  if wait == 0 then
    for _, e in ipairs(counters) do
      redis.call('INCRBY', e[1], e[2])
      redis.call('PEXPIRE', e[1], string.format('%d', math.ceil(e[3] * 1000) + margin))
    end
    for _, e in ipairs(tats) do
      local ttl = math.ceil((e[2] + e[3] - now) * 1000) + margin
      redis.call('SET', e[1], string.format('%.17g', e[2]), 'PX', string.format('%d', ttl))
    end
    results[g + 1] = '0'
  else
    results[g + 1] = string.format('%.17g', wait)
  end
end
return results
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
MAX_CANDIDATES = 4  # slots declared per counter; more means the clock estimate is useless, and costs a retry


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """The KEYS and ARGV of one script call."""

    keys: list[str]
    args: list[str | int]


@dataclass(frozen=True, slots=True)
class ScriptReply:
    """What the script answered: the server time it decided at, and the groups' waits (None: a slot miss)."""

    now: float
    waits: list[float] | None


def tagged(key: str, cluster: bool) -> str:
    """A check's key as it appears in Redis keys: on a cluster, its first field is the hash tag."""
    if not cluster:
        return key
    head, sep, rest = key.partition(":")
    if not head:  # an empty tag would hash the whole key: a counter's slots would land on different nodes
        return f"{{{key}}}"
    return f"{{{head}}}{sep}{rest}"


def counter_key(prefix: str, key: str, window: int, slot: int) -> str:
    """The window counter of one slot."""
    return f"{prefix}:q:{key}:{window}:{slot}"


def burst_key(prefix: str, key: str, window: int) -> str:
    """The burst bucket of one check."""
    return f"{prefix}:b:{key}:{window}"


def build_call(
    groups: Sequence[Sequence[QuotaCheck]], prefix: str, cluster: bool, now: str, span: tuple[float, float]
) -> ScriptCall:
    """The call deciding `groups`, at `now` ('' for the server's clock, which lies within `span`)."""
    keys: list[str] = []
    args: list[str | int] = [now, MARGIN_MS, len(groups), *(len(group) for group in groups)]
    for group in groups:
        for check in group:
            key = tagged(check.key, cluster)
            first = math.floor(span[0] / check.window)
            candidates = min(math.floor(span[1] / check.window) - first + 1, MAX_CANDIDATES)
            keys.append(burst_key(prefix, key, check.window))
            keys.extend(counter_key(prefix, key, check.window, first + i) for i in range(candidates))
            burst = -1 if check.burst is None else check.burst
            args.extend((check.limit, check.window, burst, check.quantity, first, candidates))
    return ScriptCall(keys, args)


def parse_reply(raw: Any, count: int) -> ScriptReply:
    """The script's reply for `count` groups; ValueError if it is something else."""
    if not isinstance(raw, list) or len(raw) not in (1, count + 1):
        raise ValueError(f"unexpected quota script reply: {type(raw).__name__}")
    now = float(raw[0])
    if len(raw) == 1:
        return ScriptReply(now, None)
    return ScriptReply(now, [float(value) for value in raw[1:]])


__all__ = [
    "MARGIN_MS",
    "SCRIPT",
    "SCRIPT_SHA",
    "ScriptCall",
    "ScriptReply",
    "build_call",
    "burst_key",
    "counter_key",
    "parse_reply",
    "tagged",
]

"""Secrets generated from gitleaks' rule regexes (config/gitleaks.toml of a gitleaks checkout).

Nothing from gitleaks is part of this repository: the rules are read from a checkout or snapshot given by
GITLEAKS_DIR (a work tree, or a bare git directory) or found under /work/.mirror/, and the samples are
generated from them (`rstr.xeger`, seeded) and cached under bench/data/ext/ (ignored by git). A sample is
kept only if it is a true positive by the rule's own definition: the rule's regex matches it, its secret
group clears the rule's entropy threshold, and neither the rule's allowlists nor the global ones (regexes,
stopwords) excuse it. A secret its rule finds only by a keyword
around it (`discord_client_secret = <hex>`) is planted only next to a label or in that context, as a weak
value is. The global allowlist's placeholder shapes (`${API_KEY}`, `{{ .Values.token }}`) become
decoys: gitleaks' own false positives, which a scrubber should keep.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .model import FREE_TEXT, Value, shannon_entropy, sub_rng

MIRRORS = Path("/work/.mirror")
SAMPLES_PER_RULE = 3
_POSIX = {
    "[:alnum:]": "a-zA-Z0-9",
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:xdigit:]": "0-9a-fA-F",
    "[:space:]": r"\s",
    "[:word:]": r"\w",
}
# Global allowlist patterns that are placeholders (not booleans, single repeated letters or home paths).
_PLACEHOLDER_STARTS = (r"\$", r"\{", r"\%", r"\@", "%")
_PLACEHOLDER_KEYS = ("api_key", "token", "secret", "password", "client_secret", "auth_token")


def to_python(pattern: str) -> str:
    """Go RE2 syntax to Python's: case-insensitivity for the whole pattern if any part asks for it (only
    generation and re-matching use it), `\\z`, and POSIX classes."""
    if "(?i)" in pattern:
        pattern = "(?i)" + pattern.replace("(?i)", "")
    pattern = pattern.replace(r"\z", r"\Z")
    for posix, plain in _POSIX.items():
        pattern = pattern.replace(posix, plain)
    return pattern


def find_config() -> tuple[str, str] | None:
    """(gitleaks.toml text, where it came from), or None when no gitleaks checkout is at hand."""
    candidates = [Path(os.environ["GITLEAKS_DIR"])] if os.environ.get("GITLEAKS_DIR") else []
    if MIRRORS.is_dir():
        candidates += sorted(p for p in MIRRORS.glob("gitleaks+gitleaks*/*") if p.is_dir())
    for path in candidates:
        toml = path / "config" / "gitleaks.toml"
        if toml.is_file():
            return toml.read_text(encoding="utf-8"), str(toml)
        try:
            out = subprocess.run(
                ["git", f"--git-dir={path}", "show", "HEAD:config/gitleaks.toml"],
                capture_output=True,
                text=True,
                check=True,
            )
            rev = subprocess.run(
                ["git", f"--git-dir={path}", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        return out.stdout, f"{path}@{rev}"
    return None


def _allowed(secret: str, match: str, allowlists: list[dict[str, Any]]) -> bool:
    for allow in allowlists:
        target = match if allow.get("regexTarget") == "match" else secret
        if any(re.search(to_python(rx), target) for rx in allow.get("regexes", [])):
            return True
        if any(word.lower() in secret.lower() for word in allow.get("stopwords", [])):
            return True
    return False


def _sample(rule: dict[str, Any], rng: Any, gen: Any, global_allow: dict[str, Any]) -> tuple[str, str] | None:
    """(secret, full match) for one generated true positive of `rule`, or None."""
    pattern = re.compile(to_python(rule["regex"]))
    for _ in range(40):
        try:
            text = gen.xeger(pattern.pattern)
        except ValueError:  # rstr caps open repeats at 100, below some rules' minimum
            return None
        m = pattern.search(text)
        if m is None:
            continue
        group = rule.get("secretGroup") or (1 if pattern.groups and m.group(1) else 0)
        secret = m.group(group)
        if not secret or len(secret.strip()) < 8 or secret != secret.strip():
            continue
        if shannon_entropy(secret) < float(rule.get("entropy", 0)):
            continue
        if _allowed(secret, m.group(0), [*rule.get("allowlists", []), global_allow]):
            continue
        return secret, m.group(0)
    return None


def generate(config_text: str, seed: int) -> Iterator[dict[str, Any]]:
    """Sample records ({kind, text, context, label, decoy}) for every rule with a regex, and placeholder decoys."""
    import rstr

    config = tomllib.loads(config_text)
    global_allow = config.get("allowlist", {})
    for rule in config.get("rules", []):
        if not rule.get("regex"):
            continue
        rng = sub_rng(seed, "gitleaks:" + rule["id"])
        gen = rstr.Rstr(rng)
        try:
            re.compile(to_python(rule["regex"]))
        except re.error:
            continue
        seen: set[str] = set()
        for _ in range(SAMPLES_PER_RULE):
            got = _sample(rule, rng, gen, global_allow)
            if got is None or got[0] in seen:
                continue
            seen.add(got[0])
            label = rule["id"].replace("-", "_")
            # A secret the rule finds only with its context (gitleaks' keyword rules: `discord...= <hex>`)
            # is, alone, a hex or base62 string like any hash: like a weak value, it is written only next
            # to its label (as a key, parameter, column or header name) or in its context.
            weak = re.compile(to_python(rule["regex"])).search(got[0]) is None
            yield {
                "kind": "secret:" + rule["id"],
                "text": got[0],
                "context": got[1],
                "label": label,
                "decoy": False,
                "weak": weak,
            }
    rng = sub_rng(seed, "gitleaks:placeholders")
    gen = rstr.Rstr(rng)
    for rx in global_allow.get("regexes", []):
        if not rx.lstrip("^").startswith(_PLACEHOLDER_STARTS):
            continue
        for _ in range(3):
            text = str(gen.xeger(to_python(rx))).strip()
            if len(text) >= 5 and not re.search(r"\s", text) and re.fullmatch(to_python(rx), text):
                key = rng.choice(_PLACEHOLDER_KEYS)
                yield {
                    "kind": "secret_placeholder",
                    "text": text,
                    "context": f"{key}={text}",
                    "label": key,
                    "decoy": True,
                }


def load(cache: Path, seed: int) -> tuple[list[Value], str]:
    """Secret values (from the cache, or generated into it), and a note saying where they came from."""
    found = find_config()
    if found is None and not cache.exists():
        return [], (
            "secrets skipped: no gitleaks checkout (set GITLEAKS_DIR to a gitleaks work tree or git directory;"
            " its config/gitleaks.toml is read)"
        )
    if found is not None:
        text, origin = found
        header = {"source": origin, "seed": seed, "format": 2}
        if not cache.exists() or json.loads(cache.read_text(encoding="utf-8").split("\n", 1)[0]) != header:
            cache.parent.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps(header)] + [json.dumps(r, ensure_ascii=False) for r in generate(text, seed)]
            cache.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = cache.read_text(encoding="utf-8").splitlines()
    origin = json.loads(lines[0])["source"]
    values = []
    for line in lines[1:]:
        r = json.loads(line)
        values.append(
            Value(
                r["kind"],
                r["text"],
                "-",
                r["label"],
                "gitleaks",
                weak=r.get("weak", False),
                decoy=r["decoy"],
                context=r["context"],
                placements=(FREE_TEXT,) if r["decoy"] else (FREE_TEXT, "key_value", "url", "sql", "header", "key_name"),
            )
        )
    note = f"secrets from gitleaks rules at {origin}" + ("" if found else " (cached; no checkout found now)")
    return values, note

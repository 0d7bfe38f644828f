"""Writing labeled values into SDK-neutral scenarios: where a value goes, and next to which label.

A scenario (replayed by sdk_python.py and node/capture.js) is an HTTP request to an app that sets scope data
(user, tags, extra, contexts), leaves breadcrumbs, logs, runs db spans and fails: an exception raised
through generated functions whose locals hold values, or a captured message. Each placement records the
form the value takes there (URL-encoded in a URL, quotes doubled in SQL), which is what the scorer looks for.
"""

from __future__ import annotations

import keyword
import random
import re
from typing import Any
from urllib.parse import quote

from .model import FREE_TEXT, HEADER, KEY_NAME, KEY_VALUE, SQL, URL, Value

NEUTRAL_KEYS = ("value", "input", "arg", "item", "target", "param", "data", "ref", "payload", "raw")
FUNCTIONS = (
    "handle_request",
    "process_order",
    "charge_customer",
    "sync_profile",
    "send_notification",
    "import_rows",
    "verify_identity",
    "render_invoice",
    "update_account",
    "dispatch_job",
)
EXC_TYPES = ("ValueError", "PaymentError", "ValidationError", "LookupError", "RuntimeError", "IntegrityError")
TABLES = ("customers", "users", "accounts", "orders", "contacts", "profiles", "leads")
SEGMENTS = ("users", "customers", "lookup", "accounts", "contacts", "search")
# Sentences with no label for the value (used for strong values and unlabeled names).
BARE = (
    "could not deliver to {v}",
    "{v} rejected by upstream",
    "lookup({v}) returned no rows",
    "retrying for {v} (attempt 3)",
    "duplicate entry {v}",
)
NAME_BARE = (
    "{v} cancelled the subscription",
    "Hello {v}, your order has shipped",
    "ticket assigned to {v}",
    "refund approved by {v} after review",
    "{v} changed their password",
)
LABELED = ("{label}: {v}", "{label}={v}", "invalid {label} {v}", "{label} '{v}' not accepted", "[{label}] {v}")


def _camel(label: str) -> str:
    head, *rest = label.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _header_name(label: str) -> str:
    return "X-" + "-".join(w.capitalize() for w in re.split(r"[_\-]+", label) if w)


def _url_safe(text: str) -> str:
    return quote(text, safe="")


class Scenario:
    """One request's worth of app data, and the labels of the values written into it."""

    def __init__(self, ident: str, sdk: str, rng: random.Random) -> None:
        self.rng = rng
        self.sdk = sdk
        self.texts: list[str] = []  # the primary message / exception value
        self.data: dict[str, Any] = {
            "id": ident,
            "sdk": sdk,
            "breadcrumbs": [],
            "extra": {},
            "tags": {},
            "user": {"id": str(rng.randint(1000, 99999))},
            "contexts": {},
            "logs": [],
            "spans": [],
            "request": {
                "method": rng.choice(["GET", "POST", "PUT"]),
                "path": "/api/v1/checkout",
                "query": "",
                "headers": {},
            },
        }
        self.vars: dict[str, Any] = {}
        self.planted: list[dict[str, Any]] = []
        self.decoys: list[dict[str, Any]] = []
        self.is_exception = rng.random() < 0.7

    # -- labels and keys ----------------------------------------------------------------------------------

    def _key(self, value: Value) -> str:
        """The key a value is filed under: its label (in one of an app's spellings) or, for a strong value or a
        decoy, sometimes a neutral one."""
        if (value.decoy or not value.weak) and self.rng.random() < 0.4:
            return self.rng.choice(NEUTRAL_KEYS)
        label = value.label
        return self.rng.choice([label, _camel(label), label, "customer_" + label if not value.decoy else label])

    def _sentence(self, value: Value, shown: str) -> str:
        if value.kind == "name_free_text":
            return self.rng.choice(NAME_BARE).format(v=shown)
        if value.weak or (not value.decoy and self.rng.random() < 0.4):
            label = self.rng.choice([value.label, value.label.replace("_", " ")])
            return self.rng.choice(LABELED).format(label=label, v=shown)
        if value.decoy:
            return self.rng.choice(["{label} {v}", "processed {label} {v}", "{v}"]).format(label=value.label, v=shown)
        return self.rng.choice(BARE).format(v=shown)

    def _record(self, value: Value, form: str, placement: str, where: str) -> None:
        label = {
            "kind": value.kind,
            "value": form,
            "raw": value.text,
            "region": value.region,
            "placement": placement,
            "source": value.source,
            "where": where,
        }
        (self.decoys if value.decoy else self.planted).append(label)

    # -- placements ---------------------------------------------------------------------------------------

    def place(self, value: Value) -> None:
        """Write `value` at one placement it allows (weak values only where a label stands next to them)."""
        allowed = [p for p in value.placements if not (value.weak and p == KEY_NAME)]
        placement = self.rng.choice(allowed)
        getattr(self, "_" + placement)(value)

    def _free_text(self, value: Value) -> None:
        shown = value.context if value.context is not None else value.text
        sentence = self._sentence(value, shown) if value.context is None or value.decoy else f"config: {shown}"
        where = self.rng.choice(["message", "message", "breadcrumb", "log"])
        if where == "message":
            self.texts.append(sentence)
        elif where == "breadcrumb":
            self.data["breadcrumbs"].append(
                {"category": self.rng.choice(["app", "auth", "payment"]), "message": sentence, "level": "info"}
            )
        else:
            self.data["logs"].append({"level": self.rng.choice(["info", "warn", "error"]), "body": sentence})
        self._record(value, value.text, FREE_TEXT, where)

    def _key_value(self, value: Value) -> None:
        key = self._key(value)
        text = value.context if value.kind == "phone_prefixed" and value.context else value.text
        targets = ["extra", "contexts", "breadcrumb", "log"]
        if len(text) <= 200:
            targets.append("tags")
        ident = key.isidentifier() and not keyword.iskeyword(key)
        if self.is_exception and ident and key not in self.vars:
            targets += ["vars", "vars"]
        if value.label in ("email", "client_ip", "full_name") and not value.decoy:
            targets.append("user")
        where = self.rng.choice(targets)
        if where == "extra":
            self.data["extra"][self._free(self.data["extra"], key)] = text
        elif where == "tags":
            self.data["tags"][self._free(self.data["tags"], key)] = text
        elif where == "contexts":
            ctx = self.data["contexts"].setdefault(self.rng.choice(["customer", "job", "payment"]), {})
            ctx[self._free(ctx, key)] = text
        elif where == "breadcrumb":
            self.data["breadcrumbs"].append({"category": "app", "message": "state", "data": {key: text}})
        elif where == "log":
            self.data["logs"].append({"level": "info", "body": "state changed", "attributes": {key: text}})
        elif where == "vars":
            self.vars[key] = text
        else:
            field = {"email": "email", "client_ip": "ip_address", "full_name": "username"}[value.label]
            if field in self.data["user"]:
                self.data["extra"][self._free(self.data["extra"], key)] = text
                where = "extra"
            else:
                self.data["user"][field] = text
        self._record(value, value.text, KEY_VALUE, where)

    @staticmethod
    def _free(container: dict[str, Any], key: str) -> str:
        n = 2
        base = key
        while key in container:
            key = f"{base}{n}"
            n += 1
        return key

    def _url(self, value: Value) -> None:
        form = _url_safe(value.text)
        param = value.label if value.weak or self.rng.random() < 0.6 else self.rng.choice(["q", "id", "ref", "u"])
        choices = ["query", "crumb_url"] + ([] if value.weak else ["path"])
        if value.source == "gitleaks" and not value.decoy:
            choices.append("userinfo")
        where = self.rng.choice(choices)
        request = self.data["request"]
        if where == "query":
            request["query"] = "&".join(p for p in (request["query"], f"{param}={form}") if p)
        elif where == "path":
            request["path"] = f"/api/v1/{self.rng.choice(SEGMENTS)}/{form}"
        elif where == "crumb_url":
            url = f"https://api.partner.example/v2/{self.rng.choice(SEGMENTS)}?{param}={form}&page=1"
            self.data["breadcrumbs"].append(
                {"type": "http", "category": "httplib", "data": {"url": url, "method": "GET", "status_code": 200}}
            )
        else:
            url = f"https://deploy:{form}@git.example.com/shop/backend.git"
            self.data["breadcrumbs"].append(
                {"type": "http", "category": "httplib", "data": {"url": url, "method": "GET", "status_code": 401}}
            )
        self._record(value, form, URL, where)

    def _sql(self, value: Value) -> None:
        literal = value.text.replace("'", "''")
        table, column = self.rng.choice(TABLES), re.sub(r"\W", "_", value.label)
        row = self.rng.randint(1, 99999)
        sql = self.rng.choice(
            [
                f"INSERT INTO {table} (id, {column}, created_at) VALUES ({row}, '{literal}', now())",
                f"SELECT id, status FROM {table} WHERE {column} = '{literal}' LIMIT 1",
                f"UPDATE {table} SET {column} = '{literal}', updated_at = now() WHERE id = {row}",
            ]
        )
        where = self.rng.choice(["query_breadcrumb", "db_span"])
        if where == "db_span":
            self.data["spans"].append({"op": "db", "description": sql})
        else:
            self.data["breadcrumbs"].append({"category": "query", "message": sql})
        self._record(value, literal, SQL, where)

    def _header(self, value: Value) -> None:
        form = value.text if value.text.isascii() and value.text.isprintable() else _url_safe(value.text)
        headers = self.data["request"]["headers"]
        if (
            value.source == "gitleaks"
            and not value.decoy
            and "Authorization" not in headers
            and self.rng.random() < 0.5
        ):
            headers["Authorization"] = f"Bearer {form}"
        else:
            name = _header_name(
                value.label if (value.weak or value.decoy or self.rng.random() < 0.6) else "debug_value"
            )
            headers[self._free(headers, name)] = form
        self._record(value, form, HEADER, "request.headers")

    def _key_name(self, value: Value) -> None:
        where = self.rng.choice(["extra", "contexts"])
        if where == "extra":
            self.data["extra"].setdefault("seen", {})[value.text] = self.rng.randint(1, 9)
        else:
            self.data["contexts"].setdefault("index", {})[value.text] = True
        self._record(value, value.text, KEY_NAME, where)

    # -- the finished scenario ----------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """The scenario as the capture scripts read it."""
        data = self.data
        text = (
            "; ".join(self.texts) if self.texts else self.rng.choice(["checkout failed", "sync aborted", "job failed"])
        )
        if self.is_exception:
            depth = self.rng.randint(2, 4)
            data["exception"] = {
                "type": self.rng.choice(EXC_TYPES),
                "value": text,
                "functions": self.rng.sample(FUNCTIONS, depth),
                "vars": self.vars,
            }
        else:
            data["message"] = text
        return {"scenario": data, "planted": self.planted, "decoys": self.decoys}

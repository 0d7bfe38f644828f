"""Vendor credentials that don't identify themselves, found by the vendor's name assigned to them.

Many vendors issue keys that are plain hex, base62 or UUIDs (Adobe, Asana, Discord, HubSpot, Twitter...):
the value alone is indistinguishable from a hash or an id, so secret scanners (gitleaks' keyword rules)
find them by the vendor's name in the identifier they are assigned to: `discord_bot_token = "..."`,
`HUBSPOT_KEY: ...`, `{"twitterApiSecret": "..."}` in a log line. This detector does the same for text:
a vendor's name, the rest of an identifier (`_api_key`, ` client secret`), an assignment (`=`, `:`,
`:=`, `=>`, `?=`, `||`, `,`, `>`), quotes, then a value strong enough to be a credential: 8+ characters
with a letter and a digit and 3+ bits of entropy per character, and no URL. Only the value is replaced.

Under a key, the same values are the key rules' (`secrets.sensitive_keys` names client ids and secrets,
API keys and tokens, whatever the vendor).

The vendors' names are the family's trigger keywords (case-folded), so the regex runs only on the rare
strings that name one. Short names that are inside common words (`lob` in `global`, `linear`, `drone`) must
begin a word; the others may be glued to what comes before (`myHubspotKey`).
"""

from __future__ import annotations

import math
import re
from collections import Counter

from .base import Detector, Trigger
from .names import anchored

FAMILY = "vendor_assignment"

# Vendors whose credentials carry no prefix of their own (lower case, each spelling: they are the keywords).
_VENDORS = (
    "adafruit", "adobe", "airtable", "algolia", "alibaba", "asana", "atlassian", "confluence", "jira", "beamer",
    "bitbucket", "bittrex", "meraki", "cloudflare", "codecov", "cohere", "coinbase", "confluent", "contentful",
    "datadog", "discord", "dropbox", "facebook", "fastly", "finicity", "finnhub", "flickr", "freemius",
    "freshbooks", "gitter", "gocardless", "heroku", "hubspot", "intercom", "jfrog", "artifactory", "bintray",
    "kraken", "kucoin", "launchdarkly", "linkedin", "linked-in", "looker", "mailchimp", "mailgun", "mapbox",
    "mattermost", "messagebird", "message-bird", "message_bird", "netlify", "newrelic", "new-relic", "new_relic",
    "new relic", "linked_in",
    "nytimes", "new-york-times", "privateai", "private_ai", "private-ai", "rapidapi", "sendbird", "sidekiq",
    "snyk", "squarespace", "sumologic", "telegram", "tgram", "travis", "twitch", "twitter", "typeform", "yandex",
    "zendesk",
)  # fmt: skip
# Names inside common words: only at the start of a word (or of a camelCase part).
_WORD_START = ("lob", "sumo", "okta", "etsy", "drone", "linear", "plaid", "sonar", "droneci", "travisci")

_BETWEEN = r"[ \t\w.-]{0,20}?"  # the rest of the identifier: `_client_secret`, `ApiKey`, ` bot token`
_ASSIGN = r"[\s'\"]{0,3}(?:=>|:{1,3}=|\?=|\|\||[=:>,])[`'\"\s=]{0,5}"
_VALUE = r"[A-Za-z0-9_][A-Za-z0-9_+/.=:~-]{7,199}"
_END = r"(?=[`'\"\s;,)\]}<]|\\[nrt]|$)"


# The names as prefix trees behind a class of their first letters (names.anchored): the regex engine skips to
# those letters, and then tries one branch, not 90 names.
# A short name begins a word: after no letter, or at a camelCase boundary (`myOktaToken`).
_NAMES = (
    anchored({"": _VENDORS}, r"[^\s\S]", fold=True)
    + "|(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
    + anchored({"": _WORD_START}, r"[^\s\S]", fold=True)
)
_PATTERN = re.compile(rf"(?:{_NAMES})(?i:{_BETWEEN}{_ASSIGN})(?P<secret>{_VALUE}){_END}", re.ASCII)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def strong(value: str) -> bool:
    """Could `value` be a credential? 8+ characters, a letter and a digit, 3+ bits per character, no URL."""
    value = value.rstrip(".,:=")
    return (
        len(value) >= 8
        and "://" not in value
        and any(ch.isdigit() for ch in value)
        and any(ch.isalpha() for ch in value)
        and entropy(value) >= 3.0
    )


def _valid(match: str) -> bool:
    found = _PATTERN.fullmatch(match)
    return found is not None and strong(found.group("secret"))


DETECTORS = (Detector("vendor_assignment", "[Filtered]", _PATTERN, lambda text: True, _valid, FAMILY),)
# The trigger's keywords: a part of each name (every match holds one) that begins with three letters rare in
# events' text, so that the keyword scan of every string stops at few places ("ntercom" would stop at every
# "int"; "rcom" rarely). Chosen by counting the trigrams of the benchmark corpus's strings.
_KEYWORDS = (
    "afruit", "dobe", "airtable", "olia", "baba", "asana", "atlassian", "uence", "jira", "beamer", "itbucket",
    "ittrex", "raki", "oudflare", "decov", "cohere", "coinbase", "uent", "tful", "tadog", "iscord", "pbox",
    "ebook", "stly", "finicity", "finnhub", "flickr", "eemius", "eshbooks", "itter", "gocardless", "eroku",
    "ubspot", "rcom", "jfrog", "ifactory", "bintray", "raken", "coin", "chdarkly", "kedin", "d-in", "d_in",
    "looker", "himp", "lgun", "most", "bird", "etlify", "ewrelic", "w-relic", "w_relic", "w relic", "ytimes",
    "ork-times", "teai", "e_ai", "e-ai", "idapi", "dekiq", "snyk", "squarespace", "ologic", "legram", "tgram",
    "ravis", "itch", "eform", "yandex", "desk", "lob", "sumo", "okta", "etsy", "drone", "near", "laid", "onar",
)  # fmt: skip
TRIGGERS = {FAMILY: Trigger(keywords=_KEYWORDS)}

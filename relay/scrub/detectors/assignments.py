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
    "zendesk", "sendinblue", "pagerduty", "pusher", "segment", "mixpanel", "amplitude", "auth0", "firebase",
)  # fmt: skip
# Names inside common words: only at the start of a word.
_WORD_START = ("lob", "sumo", "okta", "etsy", "drone", "linear", "plaid", "sonar", "droneci", "travisci")

_BETWEEN = r"[ \t\w.-]{0,20}?"  # the rest of the identifier: `_client_secret`, `ApiKey`, ` bot token`
_ASSIGN = r"[\s'\"]{0,3}(?:=>|:{1,3}=|\?=|\|\||[=:>,])[`'\"\s=]{0,5}"
_VALUE = r"[A-Za-z0-9_][A-Za-z0-9_+/.=:~-]{7,199}"
_END = r"(?=[`'\"\s;,)\]}<]|\\[nrt]|$)"


_PATTERN = re.compile(
    r"(?:(?:" + "|".join(re.escape(w) for w in sorted(_VENDORS, key=len, reverse=True)) + r")"
    r"|(?<![A-Za-z])(?:"
    + "|".join(re.escape(w) for w in sorted(_WORD_START, key=len, reverse=True))
    + r"))"
    + _BETWEEN
    + _ASSIGN
    + rf"(?P<secret>{_VALUE}){_END}",
    re.IGNORECASE | re.ASCII,
)


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
TRIGGERS = {FAMILY: Trigger(keywords=tuple(sorted(set(_VENDORS + _WORD_START))))}

"""The pipeline stage that draws from the project's quotas, and answers like Sentry when they run out."""

from __future__ import annotations

import time

from ..config import QuotaConfig
from ..envelope import Item
from ..metrics import Metrics
from ..outcomes import Outcome
from ..pipeline import ProcessingContext
from .header import RateLimit
from .quota import BYTE_CATEGORIES, QuotaBackend, QuotaCheck

DEFAULT_REASON = "over_quota"


class QuotaStage:
    """Counts each envelope's items against the quotas that cover them; refused items are rate limited.

    Only the categories over a quota lose their items; the rest of the envelope goes on.
    """

    name = "quotas"

    def __init__(self, backend: QuotaBackend, metrics: Metrics) -> None:
        self._backend = backend
        self._metrics = metrics

    async def process(self, ctx: ProcessingContext) -> None:
        """One backend call for the whole envelope; drop what doesn't fit, announce the limits."""
        project = ctx.project
        if project is None or not project.quotas or not ctx.envelope.items:
            return
        by_category: dict[str, list[Item]] = {}
        for item in ctx.envelope.items:
            if item.type != "client_report":  # outcomes are never rate limited
                by_category.setdefault(item.category, []).append(item)
        groups: list[list[QuotaCheck]] = []
        plans: list[tuple[str, list[Item], list[QuotaConfig], int]] = []
        for category, items in by_category.items():
            quantity = sum(len(i.payload) if category in BYTE_CATEGORIES else i.quantity for i in items)
            quotas = [q for q in project.quotas if q.applies_to(category)]
            if not quotas:
                continue
            groups.append([self._check(ctx, quota, quantity) for quota in quotas])
            plans.append((category, items, quotas, quantity))
        if not groups:
            return
        # A quota of 0 refuses everything it covers, whatever the quantity (an empty attachment is 0 bytes), as
        # in Sentry; it is never asked of the backend.
        now = time.time()
        zero = [next((q.window - now % q.window for q in quotas if q.limit == 0), 0.0) for _, _, quotas, _ in plans]
        asked = [(group, plan) for group, plan, closed in zip(groups, plans, zero, strict=True) if not closed]
        answers = iter(await self._backend.consume([group for group, _ in asked]) if asked else [])
        waits = [closed or next(answers) for closed in zero]
        usage = self._metrics.quota_usage
        project_label = str(ctx.project_id)
        for (category, items, quotas, quantity), wait in zip(plans, waits, strict=True):
            if wait <= 0:
                for quota in quotas:
                    usage.labels(project_label, quota.id, "accepted").inc(quantity)
                continue
            for quota in quotas:
                usage.labels(project_label, quota.id, "refused").inc(quantity)
            reason = next((q.reason_code for q in quotas if q.reason_code), None) or DEFAULT_REASON
            scope = "key" if all(q.scope == "key" for q in quotas) else "project"
            # An event's attachments go with it (they can't be shown without it), as in Sentry.
            ctx.drop([*items, *ctx.envelope.dependents({category})], Outcome.RATE_LIMITED, reason)
            ctx.rate_limits.append((RateLimit(wait, frozenset({category}), scope, reason), wait))

    @staticmethod
    def _check(ctx: ProcessingContext, quota: QuotaConfig, quantity: int) -> QuotaCheck:
        scope_id = str(ctx.project_id) if quota.scope == "project" else ctx.public_key
        key = f"{ctx.project_id}:{quota.id}:{quota.scope}:{scope_id}"
        return QuotaCheck(key, quota.limit, quota.window, quota.burst, quantity)

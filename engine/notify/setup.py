"""The notifier that ``[notify]`` settings describe (None when nothing is configured)."""

from __future__ import annotations

from typing import Any

from engine.core.clock import Clock
from engine.notify.senders import Sender, SnsSender, WebhookSender
from engine.notify.throttle import RateLimitedNotifier


def build_notifier(
    notify: Any, *, clock: Clock, region: str | None = None, endpoint_url: str | None = None
) -> RateLimitedNotifier | None:
    """``notify``: the ``[notify]`` settings section (``engine.settings.NotifySettings``)."""
    senders: list[Sender] = []
    if notify.webhook_url is not None:
        url = notify.webhook_url.get_secret_value()
        senders.append(WebhookSender(url, style=notify.webhook_style, timeout_s=notify.timeout_s))
    if notify.sns_topic_arn:
        import boto3

        sns = boto3.client("sns", region_name=region, endpoint_url=endpoint_url)
        senders.append(SnsSender(sns, notify.sns_topic_arn))
    if not senders:
        return None
    return RateLimitedNotifier(senders, clock=clock, min_interval_s=notify.min_interval_s)

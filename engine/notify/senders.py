"""Channels: an HTTP webhook (Slack-compatible or generic JSON) and an SNS topic."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from engine.core.errors import WafsmithError
from engine.notify.notice import Notice


class NotifyError(WafsmithError):
    """A channel refused or could not take a notice (the reason is in the message)."""


class Sender(Protocol):
    name: str

    def send(self, notice: Notice) -> None: ...


class WebhookSender:
    """POSTs each notice as JSON to ``url``: ``style="slack"`` or ``"generic"``."""

    def __init__(
        self, url: str, *, style: Literal["slack", "generic"] = "slack", timeout_s: float = 5.0
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise NotifyError("the webhook URL must start with https:// (or http://)")
        self.url = url
        self.style = style
        self.timeout_s = timeout_s
        self.name = f"webhook:{style}"

    def send(self, notice: Notice) -> None:
        body = notice.slack() if self.style == "slack" else notice.generic()
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "wafsmith"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                reply.read(1024)
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"the webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifyError(f"the webhook could not be reached: {reason}") from None


class SnsSender:
    """Publishes each notice (generic JSON, with the headline as subject) to an SNS topic."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self.sns = sns
        self.topic_arn = topic_arn
        self.name = "sns"

    def send(self, notice: Notice) -> None:
        try:
            self.sns.publish(
                TopicArn=self.topic_arn,
                Subject=f"[wafsmith] {notice.headline()}"[:100],
                Message=json.dumps(notice.generic()),
            )
        except (ClientError, BotoCoreError) as exc:
            raise NotifyError(f"SNS publish failed: {exc.__class__.__name__}: {exc}") from None

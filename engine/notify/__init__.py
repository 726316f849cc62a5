"""Telling people: proposals that wait for an analyst, blast-radius holds, enforcement
failures, sent to a webhook (Slack-compatible or generic JSON) and/or an SNS topic.

``Notice`` is the one record every channel renders; ``RateLimitedNotifier`` sends at most one
notice per kind per interval and folds the ones in between into the next ("and 4 more"), so
an attack that proposes a thousand decisions sends one message, not a thousand.
"""

from engine.notify.notice import Notice, NoticeKind
from engine.notify.senders import NotifyError, SnsSender, WebhookSender
from engine.notify.throttle import RateLimitedNotifier

__all__ = [
    "Notice",
    "NoticeKind",
    "NotifyError",
    "RateLimitedNotifier",
    "SnsSender",
    "WebhookSender",
]

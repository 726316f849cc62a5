"""The join fixtures (``data/fixtures/join``: one simulated stream as an ALB, a CloudFront and
two web ACLs log it) and the keys AWS writes the ALB's and its web ACL's logs under."""

from __future__ import annotations

from pathlib import Path

JOIN_FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures" / "join"
AWS_KEYS = {
    "alb.log.gz": "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/03/02/"
    "123456789012_elasticloadbalancing_us-east-1_app.shop.1_20260302T1000Z_10.0.0.1_x.log.gz",
    "waf-alb.log.gz": "AWSLogs/123456789012/WAFLogs/us-east-1/shop-acl/2026/03/02/10/00/"
    "123456789012_waflogs_us-east-1_shop-acl_20260302T1000Z_x.log.gz",
}

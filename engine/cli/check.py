"""``wafsmith check``: preflight of everything ``wafsmith run`` needs, one line per check.

Checks, in order: the configuration; AWS credentials (``sts:GetCallerIdentity``); clock skew
against AWS's ``Date`` header (SigV4 refuses requests more than 5 minutes off); the ledger
database; the source (queue, bucket or local paths); the web ACL the engine's rules go into;
and permissions — one dry call per IAM action the mode needs, made so that it cannot change
anything (an update of an id that cannot exist, a delete of a receipt handle that cannot be
valid, a read of a key that cannot exist): an ``AccessDenied`` answer fails the check, any
other answer proves the permission. Actions that have no harmless dry call (creating and
deleting IP sets and rule groups, ``sqs:ReceiveMessage``) are listed as not checked.

Nothing in the configuration that calls AWS (a local source, no web ACL, no endpoint): the AWS
checks are skipped. Exit codes: 0 every check passed (warnings allowed); 1 a check failed;
2 the configuration itself is unusable. ``wafsmith run`` runs these checks at start and
refuses to start when one fails.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from engine.cli.config import config_path, load_engine_settings
from engine.cli.output import STDOUT, aws_error_line, write_json
from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.errors import ConfigError

EPILOG = """examples:
  wafsmith check --config /etc/wafsmith/wafsmith.toml
  WAFSMITH_ENFORCEMENT__MODE=enforce wafsmith check --config wafsmith.toml --json
"""
MAX_SKEW_S = 300.0  # SigV4's limit
WARN_SKEW_S = 30.0
IMPOSSIBLE_ID = "00000000-0000-0000-0000-000000000000"
PREFLIGHT = "wafsmith-preflight-check"
_VISIBILITY = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False,
               "MetricName": PREFLIGHT}
_DENIED = ("AccessDenied", "UnauthorizedOperation", "InvalidClientTokenId", "ExpiredToken",
           "SignatureDoesNotMatch", "UnrecognizedClient", "InvalidAccessKeyId")
NOT_DRY_CALLABLE = ("wafv2:CreateIPSet", "wafv2:DeleteIPSet", "wafv2:CreateRuleGroup",
                    "wafv2:DeleteRuleGroup", "sqs:ReceiveMessage")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def line(self) -> str:
        return f"{self.status.upper():<5} {self.name:<12} {self.detail}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="preflight: credentials, queue, bucket, web ACL, permissions, ledger, clock skew",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (default: "
                        "$WAFSMITH_CONFIG)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--json", dest="output", action="store_const", const="json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    try:
        settings = load_engine_settings(path)
    except ConfigError as exc:
        print(f"FAIL  {'config':<12} {exc}", file=sys.stderr)
        return 2
    checks = run_checks(settings, config_file=path)
    if args.output == "json":
        write_json({"ok": not any(c.failed for c in checks),
                    "checks": [asdict(c) for c in checks]}, STDOUT)
    else:
        for check in checks:
            print(check.line())
    return 1 if any(c.failed for c in checks) else 0


def run_checks(settings: Any, *, config_file: Path | None = None,
               clock: Clock = SYSTEM_CLOCK) -> list[Check]:
    """Every check for ``settings``, in order; AWS ones only when the config calls AWS."""
    from engine.enforcement import compiler_config, reaches_aws

    source = settings.source
    mode = settings.enforcement.mode
    compiler = compiler_config(settings)
    checks = [Check("config", "ok", f"{config_file or '(defaults)'}: mode {mode}, "
                    f"source {source.kind}")]
    needs_aws = source.kind in ("sqs", "s3_list") or reaches_aws(settings, compiler)
    aws = _Aws(settings) if needs_aws else None
    if aws is None:
        checks.append(Check("credentials", "skip", "nothing in the configuration calls AWS"))
    else:
        checks += aws.identity(clock)
    checks.append(_ledger(settings))
    checks += _source(settings, aws)
    if aws is not None and compiler.placement.web_acl_name:
        checks += aws.web_acl(compiler.placement.web_acl_name, compiler.scope, mode)
    else:
        checks.append(Check("web_acl", "skip", "no [enforcement] web_acl_name: compile and "
                            "plan only"))
    return checks


def _ledger(settings: Any) -> Check:
    from engine.decisions import Ledger
    from engine.decisions.db import redact

    url = settings.resolved_database_url
    try:
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        ledger = Ledger.open(url, clock=SYSTEM_CLOCK)
    except (ConfigError, OSError) as exc:
        return Check("ledger", "fail", str(exc))
    try:
        total = sum(ledger.counts_by_state().values())
    finally:
        ledger.close()
    return Check("ledger", "ok", f"{redact(url)} ({total} decisions)")


def _source(settings: Any, aws: _Aws | None) -> list[Check]:
    source = settings.source
    if source.kind == "local":
        missing = [str(p) for p in source.paths if not Path(p).exists()]
        if missing:
            return [Check("source", "fail", f"local paths do not exist: {', '.join(missing)}")]
        return [Check("source", "ok", f"local: {', '.join(str(p) for p in source.paths)}")]
    assert aws is not None
    out = []
    if source.kind == "sqs":
        out.append(aws.queue(source.queue_url))
    if source.bucket:
        out.append(aws.bucket(source.bucket, source.prefix))
    else:
        out.append(Check("bucket", "skip", "buckets are named by each notification"))
    return out


class _Aws:
    """The AWS side of the checks: one boto3 session, clients at the configured endpoint."""

    def __init__(self, settings: Any) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.session = boto3.session.Session(region_name=settings.aws.region)
        self._config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)
        self.allowed: dict[str, list[str]] = {}
        self.denied: list[str] = []

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(
            service, endpoint_url=self.settings.aws.endpoint_url,
            region_name=region or self.settings.aws.region, config=self._config,
        )

    def identity(self, clock: Clock) -> list[Check]:
        if self.session.get_credentials() is None:
            return [Check("credentials", "fail", "no AWS credentials found (AWS_PROFILE, "
                          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance/task role)"),
                    Check("clock", "skip", "needs an AWS answer")]
        try:
            reply = self.client("sts").get_caller_identity()
        except Exception as exc:
            return [Check("credentials", "fail", _aws_text(exc)),
                    Check("clock", "skip", "needs an AWS answer")]
        return [Check("credentials", "ok", reply.get("Arn", "?")), _skew(reply, clock)]

    def queue(self, url: str) -> Check:
        sqs = self.client("sqs")
        for action, call in (
            ("ChangeMessageVisibility", lambda: sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=PREFLIGHT, VisibilityTimeout=0)),
            ("DeleteMessage", lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=PREFLIGHT)),
        ):
            problem = self._dry("sqs", action, call, missing=("NonExistentQueue",
                                                               "QueueDoesNotExist"))
            if problem:
                return Check("queue", "fail", f"{url}: {problem}")
        return Check("queue", "ok", f"{url} (sqs:ChangeMessageVisibility, sqs:DeleteMessage "
                     "allowed)")

    def bucket(self, bucket: str, prefix: str) -> Check:
        s3 = self.client("s3")
        for action, call in (
            ("ListBucket", lambda: s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)),
            ("GetObject", lambda: s3.get_object(Bucket=bucket, Key=f"{PREFLIGHT}/none")),
        ):
            problem = self._dry("s3", action, call, missing=("NoSuchBucket",))
            if problem:
                return Check("bucket", "fail", f"s3://{bucket}/{prefix}: {problem}")
        return Check("bucket", "ok", f"s3://{bucket}/{prefix} (s3:ListBucket, s3:GetObject "
                     "allowed)")

    def web_acl(self, name: str, scope: str, mode: str) -> list[Check]:
        from engine.enforcement import waf_region

        waf = self.client("wafv2", waf_region(scope, self.settings.aws.region))
        found = None
        try:
            marker: dict[str, str] = {}
            while found is None:
                page = waf.list_web_acls(Scope=scope, Limit=100, **marker)
                found = next((a for a in page.get("WebACLs", []) if a["Name"] == name), None)
                if not page.get("NextMarker"):
                    break
                marker = {"NextMarker": page["NextMarker"]}
            if found is None:
                return [Check("web_acl", "fail", f"no {scope} web ACL named {name!r} in "
                              f"{waf.meta.region_name}")]
            acl = waf.get_web_acl(Name=name, Scope=scope, Id=found["Id"])["WebACL"]
        except Exception as exc:
            return [Check("web_acl", "fail", f"{name}: {_aws_text(exc)}")]
        checks = [Check("web_acl", "ok", f"{name} ({scope}, {len(acl.get('Rules', []))} "
                        "rules)")]
        calls = [("ListIPSets", lambda: waf.list_ip_sets(Scope=scope, Limit=1)),
                 ("ListRuleGroups", lambda: waf.list_rule_groups(Scope=scope, Limit=1))]
        if mode != "dry_run":
            lock = {"Scope": scope, "Id": IMPOSSIBLE_ID, "LockToken": IMPOSSIBLE_ID}
            calls += [
                ("UpdateIPSet", lambda: waf.update_ip_set(Name=PREFLIGHT, Addresses=[], **lock)),
                ("UpdateRuleGroup", lambda: waf.update_rule_group(
                    Name=PREFLIGHT, VisibilityConfig=_VISIBILITY, **lock)),
                # the real ACL's name with an id that cannot exist: a policy scoped to
                # webacl/<name>/* allows it, and nothing can be changed
                ("UpdateWebACL", lambda: waf.update_web_acl(
                    Name=name, DefaultAction={"Allow": {}}, VisibilityConfig=_VISIBILITY,
                    **lock)),
            ]
        for action, call in calls:
            self._dry("wafv2", action, call)
        allowed = ["ListWebACLs", "GetWebACL", *self.allowed.get("wafv2", [])]
        unchecked = ", ".join(a for a in NOT_DRY_CALLABLE if a.startswith("wafv2"))
        if self.denied:
            checks.append(Check("permissions", "fail", f"denied: {', '.join(self.denied)}"))
        else:
            extra = f"; not dry-callable: {unchecked}" if mode != "dry_run" else ""
            checks.append(Check("permissions", "ok", f"wafv2: {' '.join(allowed)} allowed "
                                f"for mode {mode}{extra}"))
        return checks

    def _dry(self, service: str, action: str, call: Any, missing: tuple[str, ...] = ()) -> str:
        """Make a dry call; '' when the permission is proven, else the problem in words."""
        from botocore.exceptions import ClientError

        try:
            call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if any(d in code for d in _DENIED):
                self.denied.append(f"{service}:{action}")
                return f"{service}:{action} denied ({code})"
            if any(m in code for m in missing):
                return f"does not exist ({code})"
        except Exception as exc:
            return _aws_text(exc)
        self.allowed.setdefault(service, []).append(action)
        return ""


def _skew(reply: dict[str, Any], clock: Clock) -> Check:
    date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return Check("clock", "skip", "AWS sent no Date header")
    skew = (clock.now() - parsedate_to_datetime(date)).total_seconds()
    text = f"{skew:+.0f} s against AWS's clock"
    if abs(skew) > MAX_SKEW_S:
        return Check("clock", "fail", f"{text} (SigV4 refuses more than {MAX_SKEW_S:.0f} s)")
    return Check("clock", "warn" if abs(skew) > WARN_SKEW_S else "ok", text)


def _aws_text(exc: Exception) -> str:
    return aws_error_line(exc) or f"{type(exc).__name__}: {exc}"


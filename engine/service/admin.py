"""The admin's levers: the approval policy and the allowlist."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.decisions import AllowlistEntry, Policy
from engine.schema.decision import DecisionError
from engine.service.base import ServiceBase
from engine.service.errors import InvalidInput, translate
from engine.service.inputs import checked_comment, checked_text


class AdminMethods(ServiceBase):
    """Read and replace the policy; add and remove allowlisted ranges (both audited)."""

    def get_policy(self) -> dict[str, Any]:
        return self.ledger.policy().model_dump(mode="json")

    def put_policy(self, document: dict[str, Any], *, by: str) -> dict[str, Any]:
        try:
            policy = Policy.model_validate({**document, "version": 0})
        except ValidationError as exc:
            raise InvalidInput(_validation_text(exc)) from None
        return self.ledger.set_policy(policy, by=by).model_dump(mode="json")

    def allowlist(self) -> list[AllowlistEntry]:
        return self.ledger.allowlist()

    def add_allowlist(self, cidr: str, *, by: str, comment: str | None = None) -> AllowlistEntry:
        checked_text(cidr, field="cidr", max_chars=64)
        try:
            entry = self.ledger.add_allowlist(cidr, by=by, comment=checked_comment(comment))
        except DecisionError as exc:
            raise translate(exc) from None
        self._forget_counts()  # allowlisting rejects or revokes overlapping decisions
        return entry

    def remove_allowlist(self, cidr: str, *, by: str) -> None:
        checked_text(cidr, field="cidr", max_chars=64)
        try:
            self.ledger.remove_allowlist(cidr, by=by)
        except DecisionError as exc:
            raise translate(exc) from None


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(policy)'}: {err['msg']}"
        for err in exc.errors()
    )

"""Administrative parts of the ledger: policy versions, the allowlist, API tokens, status."""

from __future__ import annotations

import builtins
import json
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.core import netaddr
from engine.decisions import db, tokens
from engine.decisions.errors import AllowlistTooWide, ConcurrentUpdate, UnknownEntry
from engine.decisions.ledger_rows import (
    AllowedRange,
    actor_name,
    allowed_ranges,
    overlaps,
    to_allow_entry,
    to_decision,
)
from engine.decisions.policy import Policy
from engine.decisions.records import AllowlistEntry, StatusDoc
from engine.decisions.tokens import TokenRecord
from engine.decisions.transactions import LedgerStore
from engine.schema.decision import Decision, DecisionError, Status, normalize_client


class LedgerAdmin(LedgerStore):
    """Policy, allowlist, token and status operations (every change audited)."""

    # -- policy -----------------------------------------------------------------------------

    def policy(self) -> Policy:
        """The current policy (the built-in default, version 0, until an admin sets one)."""
        p = db.policy
        with self._read() as conn:
            row = conn.execute(sa.select(p).order_by(p.c.version.desc()).limit(1)).first()
        if row is None:
            return Policy()
        return Policy.model_validate({**row.document, "version": row.version})

    def set_policy(
        self,
        policy: Policy | dict[str, Any],
        *,
        by: str,
        expected_version: int | None = None,
    ) -> Policy:
        """Store a new policy version (validated, audited); returns it with its version.

        With ``expected_version``, refuses (``ConcurrentUpdate``) when someone saved another
        version since; two admins saving at once get one winner and one clear error.
        """
        if not isinstance(policy, Policy):
            policy = Policy.model_validate(policy)
        now = self._clock.now()
        actor = actor_name(by)
        p = db.policy
        try:
            with self._write() as conn:
                current = conn.execute(sa.select(sa.func.max(p.c.version))).scalar_one() or 0
                if expected_version is not None and current != expected_version:
                    raise ConcurrentUpdate(
                        f"the policy is at version {current}, not {expected_version}; "
                        "reload it and edit again"
                    )
                stored = policy.model_copy(update={"version": current + 1})
                document = stored.model_dump(mode="json", exclude={"version"})
                conn.execute(
                    p.insert().values(
                        version=stored.version, document=document, created_by=actor, created_at=now
                    )
                )
                why = f"policy v{stored.version}: {json.dumps(document, sort_keys=True)}"
                self._audit(conn, None, "policy", actor, None, None, why, now)
        except IntegrityError:
            raise ConcurrentUpdate(
                "another policy version was saved at the same time; reload it and edit again"
            ) from None
        return stored

    def ensure_policy(self, policy: Policy | dict[str, Any], *, by: str) -> Policy:
        """Make ``policy`` current unless it already is (e.g. seeding from the config file)."""
        if not isinstance(policy, Policy):
            policy = Policy.model_validate(policy)
        current = self.policy()
        if current.model_dump(exclude={"version"}) == policy.model_dump(exclude={"version"}):
            return current
        return self.set_policy(policy, by=by)

    # -- allowlist --------------------------------------------------------------------------

    def add_allowlist(self, cidr: str, *, by: str, comment: str | None = None) -> AllowlistEntry:
        """Allowlist a range (no /0). Open decisions overlapping it are rejected or revoked.

        Refused (``AllowlistTooWide``) when the allowlist would then cover more than the
        policy's ``max_allowlist_share`` of the range's address family."""
        cidr = normalize_client(cidr)
        (added,) = allowed_ranges([cidr])
        limit = self.policy().max_allowlist_share
        now = self._clock.now()
        a = db.allowlist
        with self._write() as conn:
            row = conn.execute(sa.select(a).where(a.c.cidr == cidr)).first()
            if row is not None:
                return to_allow_entry(row)
            listed = allowed_ranges(conn.execute(sa.select(a.c.cidr)).scalars().all())
            _check_share([*listed, added], added, limit)
            conn.execute(
                a.insert().values(
                    cidr=cidr, comment=comment, created_by=actor_name(by), created_at=now
                )
            )
            self._audit(
                conn, None, f"allowlist:{cidr}", actor_name(by), None, "added", comment, now
            )
            d = db.decisions
            for r in conn.execute(sa.select(d).where(d.c.status.in_(db.OPEN_STATUSES))).all():
                if overlaps(to_decision(r), [added]) is None:
                    continue
                to = Status.REJECTED if r.status == Status.PROPOSED else Status.REVOKED
                self._move(
                    conn, r, to, by=actor_name(by), comment=f"client allowlisted ({cidr})", now=now
                )
        return AllowlistEntry(cidr, comment, actor_name(by), now)

    def remove_allowlist(self, cidr: str, *, by: str) -> None:
        """Remove an allowlisted range; raises ``UnknownEntry`` if it is not listed."""
        try:
            cidr = normalize_client(cidr)
        except DecisionError:
            cidr = str(cidr).strip()  # a row stored before today's address rules
        a = db.allowlist
        with self._write() as conn:
            if conn.execute(a.delete().where(a.c.cidr == cidr)).rowcount != 1:
                raise UnknownEntry(f"{cidr} is not allowlisted")
            self._audit(
                conn,
                None,
                f"allowlist:{cidr}",
                actor_name(by),
                "added",
                "removed",
                None,
                self._clock.now(),
            )

    def allowlist(self) -> builtins.list[AllowlistEntry]:
        a = db.allowlist
        with self._read() as conn:
            return [to_allow_entry(r) for r in conn.execute(sa.select(a).order_by(a.c.cidr))]

    def allowlist_networks(self) -> builtins.list[AllowedRange]:
        return allowed_ranges(e.cidr for e in self.allowlist())

    def allowlisted(
        self, decision: Decision, *, networks: builtins.list[AllowedRange] | None = None
    ) -> str | None:
        """The allowlisted range ``decision`` would block (its members, else its client)."""
        return overlaps(decision, self.allowlist_networks() if networks is None else networks)

    def _allowlisted_in(self, conn: Connection, decision: Decision) -> str | None:
        rows = conn.execute(sa.select(db.allowlist.c.cidr)).scalars().all()
        return overlaps(decision, allowed_ranges(rows))

    # -- API tokens and status --------------------------------------------------------------

    def create_token(self, name: str, role: str) -> tuple[str, TokenRecord]:
        """A new API token: (plaintext to show once, stored record)."""
        now = self._clock.now()
        with self._write() as conn:
            plaintext, record = tokens.create_token(conn, name=name, role=role, now=now)
            self._audit(
                conn,
                None,
                f"token:{record.id}",
                "cli",
                None,
                "created",
                f"{record.name} ({record.role.value})",
                now,
            )
        return plaintext, record

    def verify_token(self, plaintext: str) -> TokenRecord | None:
        """The live token behind ``plaintext`` (its ``last_used_at`` refreshed), else None."""
        with self._read() as conn:
            record = tokens.find_token(conn, plaintext)
        now = self._clock.now()
        if record is not None and tokens.needs_touch(record, now):
            with self._write() as conn:
                tokens.touch_token(conn, record.id, now=now)
            record = replace(record, last_used_at=now)
        return record

    def list_tokens(self) -> builtins.list[TokenRecord]:
        with self._read() as conn:
            return tokens.list_tokens(conn)

    def revoke_token(self, token_id: str, *, by: str = "cli") -> TokenRecord:
        """Revoke a token for good; raises ``UnknownEntry``."""
        now = self._clock.now()
        with self._write() as conn:
            record = tokens.revoke_token(conn, token_id)
            self._audit(
                conn, None, f"token:{token_id}", actor_name(by), "created", "revoked", None, now
            )
        return record

    def put_status(self, key: str, document: dict[str, Any]) -> None:
        """Publish a JSON status document under ``key`` (replacing the previous one)."""
        with self._write() as conn:
            tokens.put_status(conn, key, document, now=self._clock.now())

    def get_status(self, key: str) -> StatusDoc | None:
        with self._read() as conn:
            return tokens.get_status(conn, key)


def _check_share(ranges: builtins.list[AllowedRange], added: AllowedRange, limit: float) -> None:
    """Refuse an allowlist whose union covers more than ``limit`` of the family of ``added``
    (each entry may be small, but 0.0.0.0/1 + 128.0.0.0/1 is everyone)."""
    version = added.span[0]
    share = netaddr.coverage(r.span for r in ranges)[version]
    if share > limit:
        raise AllowlistTooWide(
            f"allowlisting {added.cidr} would cover {share:.4%} of the IPv{version} address "
            f"space; the policy allows at most {limit:.4%} (max_allowlist_share)"
        )

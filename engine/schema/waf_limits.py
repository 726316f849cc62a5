"""AWS WAFv2 and Shield Advanced limits: facts about AWS, written down once.

The compiler's configuration, the validator, the WCU estimate and the enforcer all check
against these numbers (aws-wafv2-shield.md §2–§7); nothing else spells them. They are AWS's
documented quotas and input constraints, not engine policy: engine-chosen bounds (name
prefix lengths, shard counts, budgets) stay with the configuration that chooses them.
"""

from __future__ import annotations

from typing import Literal, get_args

# IP sets
MAX_ADDRESSES_PER_IP_SET = 10_000  # CIDRs per set, one address family per set
MAX_ADDRESS_LENGTH = 50  # characters of one CIDR entry
MAX_IP_SETS = 100  # per account, Region and scope (default quota)

# Rate-based rules
RATE_LIMIT_MIN = 10
RATE_LIMIT_MAX = 2_000_000_000
RateWindow = Literal[60, 120, 300, 600]  # EvaluationWindowSec
RATE_WINDOWS_S: tuple[int, ...] = get_args(RateWindow)
MAX_CUSTOM_KEYS = 5  # aggregation keys of a CUSTOM_KEYS rate rule
MAX_CUSTOM_KEY_NAME_LENGTH = 64  # header, cookie and query-argument key names
MAX_RATE_RULES_PER_WEB_ACL = 10
MAX_RATE_RULES_PER_RULE_GROUP = 4

# Containers and capacity
MAX_IP_SET_REFERENCES = 50  # IP-set reference statements per web ACL or rule group
MAX_CAPACITY_WCU = 5_000  # a rule group's capacity; the largest web ACL
SHIELD_MITIGATION_WCU = 150  # Shield's automatic-response rule group in the web ACL
SHIELD_RULE_PRIORITY = 10_000_000  # where Shield puts ShieldMitigationRuleGroup_…

# Names and texts
MAX_NAME_LENGTH = 128  # IP set, rule group, web ACL and rule names
MAX_DESCRIPTION_LENGTH = 256
MAX_HEADER_NAME_LENGTH = 255  # ForwardedIPConfig.HeaderName
MAX_SHIELD_NAME_LENGTH = 128  # a Shield protection's name
NAME_PATTERN = r"^[\w\-]+$"
DESCRIPTION_PATTERN = r"^[\w+=:#@/\-,\.][\w+=:#@/\-,\.\s]+[\w+=:#@/\-,\.]$"
METRIC_NAME_PATTERN = r"^[\w#:\.\-/]+$"
HEADER_NAME_PATTERN = r"^[a-zA-Z0-9-]+$"
SHIELD_NAME_PATTERN = r"^[ a-zA-Z0-9_\.\-]*$"
RESERVED_METRIC_NAMES = ("All", "Default_Action")

"""Simulator configuration: populations, campaigns, scale presets and seed splits."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BenignKind = Literal[
    "browser",
    "crawler",
    "nat_gateway",
    "api_poller",
    "health_checker",
    # second wave (``populations.SecondWave``)
    "seo_crawler",
    "flash_crowd",
    "ipv6_household",
    "ipv6_mobile",
    "cgnat_pool",  # netagg.py
    "ipv6_site56",
]
AttackKind = Literal[
    "volumetric_flood",
    "distributed_flood",
    "scanner_fast",
    "scanner_slow",
    "credential_stuffing",
    "credential_stuffing_distributed",
    "scraper",
    "attack_tool",
    "injection_probe",
    "crawler_impersonator",  # second wave
    "ipv6_rotating_stuffing",
    "ipv6_56_rotating_stuffing",  # netagg.py
    # no rule targets these (engine/demo/simulator/norule.py)
    "bola_enumeration",
    "cache_busting",
    "inventory_bot",
    "account_takeover",
    "slow_request",
]
BENIGN_KINDS: tuple[str, ...] = BenignKind.__args__  # type: ignore[attr-defined]
ATTACK_KINDS: tuple[str, ...] = AttackKind.__args__  # type: ignore[attr-defined]

# Seeds used to choose thresholds (train) and the ones results are reported on (held-out).
TRAIN_SEEDS: tuple[int, ...] = (1, 2, 3)
HELDOUT_SEEDS: tuple[int, ...] = (101, 102, 103)

# The curated profiles (package data; PROVENANCE.md beside them says where they come from).
DATA_DIR = resources.files(__package__) / "data"


class CampaignSpec(BaseModel):
    """One attack campaign: who, when, how fast."""

    model_config = ConfigDict(extra="forbid")

    kind: AttackKind
    clients: int = Field(1, ge=1, description="attacking addresses")
    start_min: float = Field(ge=0, description="minutes after the simulation start")
    duration_min: float = Field(gt=0)
    rate_per_client: float = Field(gt=0, description="mean requests per second per address")
    subnets: int | None = Field(
        None, ge=1, description="concentrate the addresses in this many /24s (None: spread)"
    )
    shared_user_agent: bool = Field(
        False, description="every address sends the same user agent (a botnet signature)"
    )
    pool: Literal["hosting", "residential"] = Field(
        "hosting",
        description="where spread addresses come from: hosting /24s of their own, or "
        "residential /24s shared with benign users (residential proxies)",
    )
    cache_busting: bool = Field(False, description="floods add a random query to each URL")


class SecondWave(BaseModel):
    """Second-wave populations (``populations.py``): clients of each to add (0: none)."""

    model_config = ConfigDict(extra="forbid")
    seo_crawlers: int = Field(0, ge=0)
    impersonators: int = Field(0, ge=0)
    flash_crowd: int = Field(0, ge=0, description="visitors of one e-mail campaign")
    flash_crowd_start_min: float = Field(10.0, ge=0)
    ipv6_households: int = Field(0, ge=0, description="/64s holding 2-5 browsing devices")
    ipv6_mobiles: int = Field(0, ge=0, description="phones rotating addresses in one /64")
    ipv6_rotators: int = Field(
        0, ge=0, description="credential stuffers sending each attempt from a new address "
        "inside their own /64"
    )
    # network aggregates (``netagg.py``)
    cgnat_addresses: int = Field(
        0, ge=0, description="carrier CGNAT addresses, each fronting a fleet of app phones"
    )
    cgnat_per_24: int = Field(4, ge=1, description="CGNAT addresses per carrier /24")
    cgnat_phones: tuple[int, int] = (150, 600)
    cgnat_poll_s: float = Field(15.0, gt=0, description="the app's feed polling period")
    ipv6_site56s: int = Field(0, ge=0, description="/56 sites using 2-4 /64s of browsers")
    ipv6_56_rotators: int = Field(
        0, ge=0, description="credential stuffers rotating over 4-8 /64s of their own /56"
    )


class SimConfig(BaseModel):
    """Everything that shapes one simulated stream; the seed is passed separately."""

    model_config = ConfigDict(extra="forbid")

    start: datetime = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    minutes: int = Field(30, ge=1)
    host: str = "www.example.com"
    browsers: int = Field(400, ge=0, description="benign browsing clients (one IP each)")
    nat_gateways: int = Field(3, ge=0)
    nat_users: tuple[int, int] = (25, 60)
    crawlers: int = Field(4, ge=0, description="verified crawlers from published networks")
    api_pollers: int = Field(3, ge=0)
    health_checkers: int = Field(2, ge=0)
    ipv6_fraction: float = Field(0.05, ge=0, le=1, description="benign browsers on IPv6")
    campaigns: list[CampaignSpec] = Field(default_factory=list)
    second_wave: SecondWave = Field(default_factory=SecondWave)
    lookalikes: int = Field(
        0, ge=0, description="benign look-alikes of each no-rule attack kind (norule.py)"
    )
    start_jitter_min: float = Field(2.0, ge=0, description="seeded shift of campaign starts")
    param_jitter: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="seeded relative spread of each campaign's rate (and size, for campaigns "
        "of more than 4 addresses), so no seed repeats another's exact parameters",
    )
    # Rendering (S3 layout)
    account: str = "123456789012"
    region: str = "us-east-1"
    alb_name: str = "wafsmith-sim"
    alb_id: str = "50dc6c495c0c9188"
    alb_nodes: tuple[str, ...] = ("10.0.1.17", "10.0.2.45")
    distribution: str = "E2WAFSMITHSIM"
    web_acl: str = "wafsmith-sim-acl"
    corpora_dir: Path | None = Field(
        None,
        description="shared corpora folder: when set, scanners replay scanner-logs-dvwa "
        "request sequences and injection probes use csic2010 anomalous queries",
    )

    @model_validator(mode="after")
    def _campaigns_fit(self) -> SimConfig:
        for c in self.campaigns:
            if c.start_min >= self.minutes:
                raise ValueError(f"campaign {c.kind} starts after the simulation ends")
        return self

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.minutes * 60_000


def _small_campaigns() -> list[CampaignSpec]:
    C = CampaignSpec
    return [
        C(kind="volumetric_flood", clients=2, start_min=8, duration_min=5, rate_per_client=8),
        C(
            kind="distributed_flood",
            clients=240,
            subnets=3,
            shared_user_agent=True,
            start_min=12,
            duration_min=8,
            rate_per_client=0.15,
        ),
        C(  # residential proxies: rotating browser agents, /24s shared with real users
            kind="distributed_flood",
            clients=300,
            pool="residential",
            cache_busting=True,
            start_min=20,
            duration_min=6,
            rate_per_client=0.05,
        ),
        C(kind="scanner_fast", clients=1, start_min=5, duration_min=4, rate_per_client=4),
        C(kind="scanner_slow", clients=2, start_min=1, duration_min=28, rate_per_client=1 / 20),
        C(kind="credential_stuffing", clients=2, start_min=10, duration_min=6, rate_per_client=1),
        C(
            kind="credential_stuffing_distributed",
            clients=300,
            pool="residential",
            start_min=6,
            duration_min=12,
            rate_per_client=1 / 300,
        ),
        C(kind="scraper", clients=2, start_min=3, duration_min=12, rate_per_client=0.8),
        C(kind="attack_tool", clients=2, start_min=15, duration_min=4, rate_per_client=0.5),
        C(kind="injection_probe", clients=2, start_min=4, duration_min=10, rate_per_client=0.2),
    ]


def _full_campaigns() -> list[CampaignSpec]:
    C = CampaignSpec
    return [
        C(kind="volumetric_flood", clients=4, start_min=20, duration_min=8, rate_per_client=12),
        C(
            kind="distributed_flood",
            clients=1500,
            subnets=8,
            shared_user_agent=True,
            start_min=40,
            duration_min=10,
            rate_per_client=0.15,
        ),
        C(
            kind="distributed_flood",
            clients=600,
            subnets=None,
            shared_user_agent=True,
            start_min=75,
            duration_min=10,
            rate_per_client=0.2,
        ),
        C(  # residential proxies: rotating browser agents, /24s shared with real users
            kind="distributed_flood",
            clients=2000,
            pool="residential",
            cache_busting=True,
            start_min=95,
            duration_min=8,
            rate_per_client=0.04,
        ),
        C(kind="scanner_fast", clients=3, start_min=10, duration_min=6, rate_per_client=4),
        C(kind="scanner_slow", clients=4, start_min=2, duration_min=110, rate_per_client=1 / 15),
        C(kind="credential_stuffing", clients=4, start_min=30, duration_min=15, rate_per_client=1),
        C(
            kind="credential_stuffing_distributed",
            clients=1500,
            pool="residential",
            start_min=50,
            duration_min=40,
            rate_per_client=1 / 600,
        ),
        C(kind="scraper", clients=4, start_min=15, duration_min=40, rate_per_client=0.8),
        C(kind="attack_tool", clients=4, start_min=60, duration_min=10, rate_per_client=0.5),
        C(kind="injection_probe", clients=4, start_min=25, duration_min=30, rate_per_client=0.2),
    ]


def _norule_campaigns() -> list[CampaignSpec]:
    """Attacks no rule targets (``norule.py``), at rates under every flood threshold."""
    C = CampaignSpec
    return [
        C(kind="bola_enumeration", clients=4, start_min=20, duration_min=30, rate_per_client=0.08),
        C(kind="cache_busting", clients=4, start_min=22, duration_min=25, rate_per_client=0.6),
        C(kind="inventory_bot", clients=4, start_min=18, duration_min=35, rate_per_client=0.2),
        C(kind="account_takeover", clients=4, start_min=25, duration_min=25, rate_per_client=0.05),
        C(kind="slow_request", clients=4, start_min=20, duration_min=30, rate_per_client=0.05),
    ]


def preset(scale: str, **overrides) -> SimConfig:
    """``small`` runs in seconds (tests, ``--scale small``); ``full`` is the benchmark."""
    if scale == "small":
        base = dict(
            minutes=30,
            browsers=800,
            nat_gateways=3,
            nat_users=(40, 100),
            crawlers=4,
            api_pollers=3,
            health_checkers=2,
            campaigns=_small_campaigns(),
            second_wave=SecondWave(cgnat_addresses=8),  # two carriers' pools
        )
    elif scale == "full":
        base = dict(
            minutes=120,
            browsers=6000,
            nat_gateways=10,
            nat_users=(40, 150),
            crawlers=8,
            api_pollers=8,
            health_checkers=4,
            campaigns=_full_campaigns(),
            second_wave=SecondWave(cgnat_addresses=16),
        )
    elif scale == "tiny":
        base = dict(
            minutes=10,
            browsers=40,
            nat_gateways=1,
            nat_users=(5, 10),
            crawlers=1,
            api_pollers=1,
            health_checkers=1,
            campaigns=[
                c.model_copy(
                    update={
                        "start_min": min(c.start_min, 5),
                        "duration_min": min(c.duration_min, 4),
                        "clients": min(c.clients, 20),
                    }
                )
                for c in _small_campaigns()
            ],
        )
    elif scale == "norule":  # attacks no rule targets, beside their benign look-alikes
        base = dict(
            minutes=60,
            browsers=1500,
            nat_gateways=3,
            nat_users=(40, 100),
            crawlers=4,
            api_pollers=3,
            health_checkers=2,
            lookalikes=40,
            campaigns=_norule_campaigns(),
            second_wave=SecondWave(cgnat_addresses=8),  # issue 15: no CGNAT fleet flagged
        )
    else:
        raise ValueError(f"unknown scale {scale!r}: use tiny, small, full or norule")
    base.update(overrides)
    return SimConfig(**base)

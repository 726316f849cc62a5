"""Detection configuration: one pydantic section per detector, and the gates.

Every threshold a detector compares against lives here, with the window (minutes) it reads,
so operators tune behaviour in a TOML file instead of code. The features stage's options sit
beside these sections in ``[detection]`` but belong to ``engine.pipeline.AnalysisConfig``:
detectors read feature frames, never how they were built.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class FloodConfig(_Section):
    window_min: int = 1
    min_req_per_min: float = 240.0  # peak requests in one minute from one client
    min_req_5m: float = 900.0
    nat_multiplier: float = 4.0  # a NAT gateway (many human UAs) gets this much more room


class DistributedFloodConfig(_Section):
    window_min: int = 5
    member_min_req: float = 3.0  # a member sent at least this many requests in the window
    member_max_asset_frac: float = 0.05
    member_max_distinct_paths: float = 5.0  # a flood hammers a few URLs
    min_target_share: float = 0.2  # a campaign target: requested by ≥ this share of members
    member_min_share_of_median: float = 0.3  # member volume vs the population's median
    member_max_shape_gap: float = 0.5  # |query share − the population's median query share|
    min_members: int = 10
    min_population_req_per_min: float = 100.0
    baseline_multiplier: float = 3.0  # population rate vs its own trailing baseline
    baseline_alpha: float = 0.1  # EWMA weight of each new quiet window


class ScannerConfig(_Section):
    window_min: int = 5
    min_probe_paths: float = 15.0  # distinct non-asset paths answered 400/403/404
    min_err4xx_ratio: float = 0.4
    min_sensitive_paths: float = 3.0
    min_errors: float = 100.0  # 4xx answers in the fast window, whatever the paths (fuzzing)
    min_errors_ratio: float = 0.6
    slow_window_min: int = 60
    slow_min_probe_paths: float = 12.0
    slow_min_err4xx_ratio: float = 0.5


class StuffingConfig(_Section):
    window_min: int = 15
    min_login_posts: float = 10.0
    min_fail_ratio: float = 0.5


class DistributedStuffingConfig(_Section):
    window_min: int = 5
    member_window_min: int = 60
    min_site_fails: float = 15.0
    min_z: float = 4.0
    prior_fail_ratio: float = 0.15  # prior of the site's login-failure ratio
    member_min_login_post_frac: float = 0.5  # members mostly POST to the login endpoint
    min_members: int = 5
    baseline_alpha: float = 0.1


class AuthPostBotConfig(_Section):
    """A client that only posts to login paths, without status codes (WAF-only logs)."""

    window_min: int = 15
    min_auth_posts: float = 10.0
    min_auth_post_frac: float = 0.7  # share of the client's requests that are login POSTs
    max_other_requests: float = 3.0  # pages, assets, API calls besides the login path …
    max_other_frac: float = 0.1  # … or this share of its requests, whichever is more
    # A device re-authenticating on a timer: steady cadence and fewer attempts than this.
    timer_max_cv: float = 0.35  # interarrival coefficient of variation
    poller_max_auth_posts: float = 30.0


class LoginSurgeConfig(_Section):
    """Site-wide login-POST rate against its trailing baseline (no status codes needed)."""

    window_min: int = 5
    member_window_min: int = 60
    min_site_posts: float = 20.0
    baseline_multiplier: float = 3.0
    min_z: float = 4.0
    prior_posts: float = 5.0  # starting baseline (login POSTs per window) before any is seen
    baseline_alpha: float = 0.1  # EWMA weight of each new quiet window
    member_min_login_path_frac: float = 0.9  # members touch little but the login endpoint
    member_max_assets: float = 0.0  # a person's browser loads the page's assets
    min_members: int = 5


class UnseenPathsConfig(_Section):
    """Slow scanning without status codes: many paths no other client requests."""

    window_min: int = 60
    min_distinct_paths: float = 20.0
    min_distinct_per_request: float = 0.8  # a wordlist: almost every request a new path
    min_unseen_share: float = 0.8  # of its paths, requested by no other client in the window
    max_assets: float = 0.0


class ScraperConfig(_Section):
    window_min: int = 15
    min_req: float = 150.0
    min_distinct_paths: float = 60.0
    max_asset_frac: float = 0.02
    min_path_breadth: float = 0.5


class ToolConfig(_Section):
    window_min: int = 5
    min_tool_requests: float = 1.0
    min_fake_crawler_requests: float = 3.0


class InjectionConfig(_Section):
    window_min: int = 15
    min_hits: float = 2.0


class GateConfig(BaseModel):
    """Known false-positive populations (``detection.md`` §5)."""

    model_config = ConfigDict(extra="forbid")
    window_min: int = 15
    allowlist: list[str] = Field(default_factory=list)
    crawler_min_verified_frac: float = 0.5
    # Declared crawlers (a bot UA with a contact URL, e.g. AhrefsBot) are gated only while
    # they behave; verified ones (published networks) always, with misconduct proposed by the
    # crawler_conduct detector for a human. A crawler's own standards:
    declared_min_frac: float = 0.5
    crawler_max_req_per_min: float = 60.0  # crawl-rate budget: peak requests in one minute
    crawler_max_sensitive_paths: float = 3.0  # distinct sensitive paths (a crawler never probes)
    crawler_max_disallowed: float = 0.0  # requests under robots.txt Disallow prefixes
    nat_min_user_agents: float = 5.0
    nat_min_browser_frac: float = 0.5
    nat_min_asset_frac: float = 0.05
    nat_max_no_referer_frac: float = 0.5  # ... or navigate with referers (assets cached)
    # CGNAT app fleets (``gates.cgnat_pool``): many app sub-streams behind one carrier address.
    cgnat_min_user_agents: float = 20.0  # distinct device/app-version agents in the window
    cgnat_max_browser_frac: float = 0.2  # apps, not browsers (those are nat_gateway's)
    cgnat_max_req_per_min_per_ua: float = 10.0  # each sub-stream at an app's cadence
    cgnat_min_top_share: float = 0.6  # one endpoint (path template) carries most requests
    cgnat_max_err4xx: float = 0.1
    cgnat_max_login_fail_ratio: float = 0.2
    poller_max_cv: float = 0.35
    poller_max_distinct_paths: float = 5.0
    poller_max_req_per_min: float = 120.0
    health_min_frac: float = 0.8


class AnomalyConfig(_Section):
    """The isolation-forest detector, on by default.

    With ``model_path`` it scores with that persisted artifact (``wafsmith run``'s online
    trainer writes one). Without it, the analysis bootstraps a model from the stream itself:
    the benign-looking clients (no verdict, no decision, no gate) of the first
    ``bootstrap_min`` event-time minutes, refitted every ``refit_every_min`` on the rolling
    baseline. ``trainer`` names that in-process trainer (``module:Class``: the engine never
    imports the ``models`` package).
    """

    enabled: bool = True
    model_path: Path | None = None
    window_min: int = 15
    min_score: float = 0.55  # 0.5 = the training baseline's 99.9th percentile
    # The model judges clients with at least ``min_requests`` requests in its window (ratios
    # over fewer are noise to it) and learns from those with ``train_min_requests``.
    min_requests: float = 30.0
    train_min_requests: float = 10.0
    # A client this many steps outside the training range on some feature scores 0.5 (a step:
    # the feature's interquartile range, at least a tenth of a ratio or a factor 1.6 of a
    # count); the forest's own score is used where it is higher.
    novelty_steps: float = Field(2.5, gt=0)
    explain_top: int = Field(3, ge=1)
    trainer: str = Field("models.bootstrap:StreamTrainer", pattern=r"^[\w.]+:\w+$")
    bootstrap_min: float = Field(15.0, gt=0)  # event time watched before the first fit
    bootstrap_min_rows: int = Field(200, ge=10)  # benign client-windows before the first fit
    refit_every_min: float = Field(60.0, gt=0)
    capacity: int = Field(20_000, ge=100)
    # Until the stream's own model exists (bootstrap or online trainer), score with the starter
    # model shipped in the package (``models/starter/``, trained on the simulator's training
    # seeds; its card says on what). ``package:resource`` or a path; empty: no starter.
    starter_model: str = "models:starter/iforest-starter.npz"
    # A starter that flags more than this share of the clients it scores in one evaluation
    # (and at least ten) is not this site's model: it is retired. Not lower: early in a
    # stream, few clients have enough requests to be judged and attackers can be a quarter.
    starter_max_share: float = Field(0.5, gt=0, le=1)


class NetworkAggConfig(BaseModel):
    """IPv6 /56 aggregation of verdicts (``networks.py``): several /64s as one campaign."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    prefix: int = Field(56, ge=32, le=63)  # an end site's delegation (RFC 6177)
    min_subnets: int = Field(3, ge=2)  # flagged /64s before the network is one campaign
    min_fill: float = Field(0.8, gt=0, le=1)  # of the /64s active in the network, flagged


class DetectionConfig(BaseModel):
    """Everything detectors read: each detector's section and the gates."""

    model_config = ConfigDict(extra="forbid")
    gates: GateConfig = Field(default_factory=GateConfig)
    volumetric_flood: FloodConfig = Field(default_factory=FloodConfig)
    distributed_flood: DistributedFloodConfig = Field(default_factory=DistributedFloodConfig)
    scanner: ScannerConfig = Field(default_factory=ScannerConfig)
    credential_stuffing: StuffingConfig = Field(default_factory=StuffingConfig)
    distributed_stuffing: DistributedStuffingConfig = Field(
        default_factory=DistributedStuffingConfig
    )
    scraper: ScraperConfig = Field(default_factory=ScraperConfig)
    auth_post_bot: AuthPostBotConfig = Field(default_factory=AuthPostBotConfig)
    login_surge: LoginSurgeConfig = Field(default_factory=LoginSurgeConfig)
    unseen_paths: UnseenPathsConfig = Field(default_factory=UnseenPathsConfig)
    attack_tools: ToolConfig = Field(default_factory=ToolConfig)
    injection: InjectionConfig = Field(default_factory=InjectionConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    v6_networks: NetworkAggConfig = Field(default_factory=NetworkAggConfig)

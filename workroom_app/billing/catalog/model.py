"""The catalog at run time: features, their models and resolutions, plans, credit packs, and
the Catalog that holds them and answers lookups. Pricing is in pricing.py, the Generate form's
options and quote.js's copy in browser.py, the file format in schema.py and loader.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import workroom_app.billing.catalog.browser as browser
import workroom_app.billing.catalog.pricing as pricing
from workroom_app.billing.catalog.errors import (
    PlanLimit,
    UnknownFeature,
    UnknownModel,
    UnknownPlan,
)
from workroom_app.billing.catalog.pricing import GenerationRequest, Quote
from workroom_app.billing.catalog.wording import (
    format_exact,
    plural,
    unknown_feature_message,
    unknown_model_message,
)


@dataclass(frozen=True, eq=False)
class Resolution:
    key: str
    label: str
    multiplier: Fraction


@dataclass(frozen=True, eq=False)
class Model:
    feature: str
    key: str
    label: str
    rate: Fraction
    unit: str  # "image" | "second" | "characters"
    resolutions: tuple[str, ...]  # allowed keys, lowest first; empty: no resolution choice
    multipliers: Mapping[str, Fraction]  # effective multiplier of each allowed resolution
    duration_choices: tuple[int, ...] | None
    duration_min: int | None
    duration_max: int | None
    count_min: int
    count_max: int
    has_count: bool
    chars_per_unit: int | None
    max_chars: int | None
    min_units: int

    @property
    def has_duration(self) -> bool:
        return self.unit == "second"

    @property
    def has_text(self) -> bool:
        return self.unit == "characters"

    @property
    def durations(self) -> tuple[int, ...]:
        """Every duration the model accepts, for a select box (empty when it takes none)."""
        if self.duration_choices is not None:
            return self.duration_choices
        if self.duration_min is None or self.duration_max is None:
            return ()
        return tuple(range(self.duration_min, self.duration_max + 1))

    @property
    def rate_label(self) -> str:
        if self.unit == "characters":
            per = f"{self.chars_per_unit:,} characters"
        else:
            per = {"image": "image", "second": "s"}[self.unit]
        return f"{format_exact(self.rate)} {plural(self.rate, 'credit')}/{per}"


@dataclass(frozen=True, eq=False)
class Feature:
    key: str
    label: str
    selector: str  # the request field that names the model: "model", or "mode" for face swap
    selector_label: str
    resolutions: tuple[Resolution, ...]  # the ladder, lowest first
    models: Mapping[str, Model]

    def resolution(self, key: str) -> Resolution | None:
        for res in self.resolutions:
            if res.key == key:
                return res
        return None

    def resolution_label(self, key: str) -> str:
        """The label of one of this feature's resolutions (KeyError for a key it lacks)."""
        res = self.resolution(key)
        if res is None:
            raise KeyError(key)
        return res.label

    def resolution_rank(self, key: str) -> int:
        for i, res in enumerate(self.resolutions):
            if res.key == key:
                return i
        raise KeyError(key)

    def model(self, key: str) -> Model:
        try:
            return self.models[key]
        except (KeyError, TypeError):
            raise UnknownModel(unknown_model_message(self), field=self.selector) from None


@dataclass(frozen=True, eq=False)
class Plan:
    key: str
    name: str
    rank: int
    price_cents: int
    monthly_credits: int
    trial_credits: int
    max_concurrent: int
    unlimited: tuple[tuple[str, str], ...]  # (feature, model) pairs that cost 0 credits
    max_resolution: Mapping[str, str]  # feature -> highest resolution key allowed
    max_duration: Mapping[str, int]  # feature -> longest duration (s) allowed
    highlights: tuple[str, ...]
    description: str

    @property
    def paid(self) -> bool:
        return self.price_cents > 0

    @property
    def max_video_seconds(self) -> int | None:
        return self.max_duration.get("video")

    def is_unlimited(self, feature: str, model: str) -> bool:
        return (feature, model) in self.unlimited


@dataclass(frozen=True)
class CreditPack:
    """A one-off purchase of credits, on every plan (Free included)."""

    key: str
    label: str
    credits: int
    price_cents: int


class Catalog:
    def __init__(
        self,
        *,
        features: Mapping[str, Feature],
        plans: tuple[Plan, ...],
        default_plan: str,
        schema_version: int,
        currency: str = "usd",
        source: str = "catalog.toml",
        digest: str = "",
        packs: tuple[CreditPack, ...] = (),
        pack_expiry_months: int = 12,
        broken_result_refunds_per_month: int = 3,
    ):
        self.features = MappingProxyType(dict(features))
        self.packs = packs  # in the order the catalog lists them
        self._packs_by_key = {p.key: p for p in packs}
        self.pack_expiry_months = pack_expiry_months
        # "Report a broken result": the first K reports of a calendar month are refunded at once.
        self.broken_result_refunds_per_month = broken_result_refunds_per_month
        self.plans = plans  # ordered by rank, cheapest first
        self._plans_by_key = {p.key: p for p in plans}
        self.default_plan_key = default_plan
        self.schema_version = schema_version
        self.currency = (
            currency  # ISO 4217, lowercase (as Stripe writes it); plan prices are in its cents
        )
        self.source = source
        self.digest = digest  # sha256 of the file: changes whenever a price does

    def __repr__(self) -> str:
        return f"<Catalog {self.source} features={list(self.features)} plans={[p.key for p in self.plans]}>"

    # ---- lookups

    def plan(self, key: str) -> Plan:
        try:
            return self._plans_by_key[key]
        except (KeyError, TypeError):
            raise UnknownPlan(key) from None

    def pack(self, key: object) -> CreditPack | None:
        """The pack called `key`, or None (a key from a browser may be anything)."""
        if not isinstance(key, str):
            return None
        return self._packs_by_key.get(key)

    def feature(self, key: str) -> Feature:
        try:
            return self.features[key]
        except (KeyError, TypeError):
            raise UnknownFeature(unknown_feature_message(self)) from None

    @property
    def default_plan(self) -> Plan:
        return self.plan(self.default_plan_key)

    @property
    def trial_credits(self) -> int:
        """Credits granted once on sign-up."""
        return self.default_plan.trial_credits

    @property
    def paid_plans(self) -> tuple[Plan, ...]:
        return tuple(p for p in self.plans if p.paid)

    @property
    def lowest_paid_plan(self) -> Plan | None:
        return next(iter(self.paid_plans), None)

    def max_concurrent(self, plan_key: str) -> int:
        return self.plan(plan_key).max_concurrent

    # ---- pricing (pricing.py)

    def parse_request(self, request: Mapping[str, Any] | GenerationRequest) -> GenerationRequest:
        """Validate a request against the models (not the plan). Raises QuoteError subclasses."""
        return pricing.parse_request(self, request)

    def plan_limit(
        self,
        plan_key: str,
        feature: str,
        *,
        resolution: str | None = None,
        duration: int | None = None,
    ) -> PlanLimit | None:
        """The PlanLimit the plan puts on these settings (not raised), or None when allowed."""
        return pricing.plan_limit(self, plan_key, feature, resolution=resolution, duration=duration)

    def plan_allows(
        self,
        plan_key: str,
        feature: str,
        *,
        resolution: str | None = None,
        duration: int | None = None,
    ) -> bool:
        return self.plan_limit(plan_key, feature, resolution=resolution, duration=duration) is None

    def quote(self, request: Mapping[str, Any] | GenerationRequest, plan_key: str) -> Quote:
        """Price a request for an account on `plan_key`. Raises QuoteError subclasses (and
        UnknownPlan for a plan key the catalog does not know)."""
        return pricing.quote(self, request, plan_key)

    # ---- what the UI needs (browser.py)

    def feature_options(self, feature: str, plan_key: str) -> dict[str, Any]:
        """Every choice the Generate form offers for `feature` on `plan_key`, JSON-able."""
        return browser.feature_options(self, feature, plan_key)

    def for_browser(self) -> dict[str, Any]:
        """Everything quote.js needs, JSON-able."""
        return browser.for_browser(self)

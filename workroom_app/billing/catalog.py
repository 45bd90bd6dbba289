"""The catalog: what each generation costs and what each plan includes.

Prices and plans live in a data file (catalog.toml) so staff can change them without a deploy.
The file is validated completely when it is loaded: a mistake raises CatalogError naming the
field ("catalog.toml: features.video.models.veo3.rate: must be a positive number"), and the app
refuses to start rather than charge a wrong price.

`quote(request, plan_key)` is the one pricing function. The server calls it when a generation
is submitted (never trusting a price from the browser); assets/quote.js is its exact twin for
the live cost on the Generate button, fed by `catalog_for_browser()`, and
tests/test_quote_parity.py holds the two to the same answers.

Arithmetic is exact: rates and multipliers are Fractions read from the TOML text (tomllib is
given Decimal for floats), so 40 × 10 × 1.5 is 600 and never 600.0000000001 rounded up to 601.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "Catalog",
    "CatalogError",
    "Feature",
    "GenerationRequest",
    "InvalidRequest",
    "Model",
    "OutOfRange",
    "Plan",
    "PlanLimit",
    "Quote",
    "QuoteError",
    "Resolution",
    "TextTooLong",
    "UnknownFeature",
    "UnknownModel",
    "UnknownPlan",
    "UnsupportedResolution",
    "catalog_for_browser",
    "feature_options",
    "get_catalog",
    "load_catalog",
    "max_concurrent",
    "parse_catalog",
    "plan_allows",
    "plan_limit",
    "quote",
    "reload_catalog",
]

UNITS = ("image", "second", "characters")

# Integers sent as text are read only when they are plain digits: "8" is 8; "8.5", "1e9", " 8"
# and "+8" are refused. Longer than this many digits is simply out of any range, which keeps
# int() away from huge strings and gives the same answer as JavaScript's Number().
_INT_TEXT = re.compile(r"-?[0-9]+")
_MAX_INT_DIGITS = 15
_HUGE = 10**15
_BLANK = re.compile(r"[ \t\n\r\f\v]*")  # the same set as quote.js, so both call the same text blank

_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_RESOLUTION_KEY = re.compile(r"[A-Za-z0-9]{1,16}")
_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_FRACTION_TEXT = re.compile(r"[0-9]+/[0-9]+")

# Bounds that keep every product far inside exact integer range on both sides.
_MAX_RATE = 1_000_000
_MAX_MULTIPLIER = 1_000
_MAX_SECONDS = 86_400
_MAX_COUNT = 1_000
_MAX_CHARS = 1_000_000
_MAX_PACK_CREDITS = 10_000_000
_MAX_PACK_CENTS = 10_000_000  # $100,000


# ------------------------------------------------------------------------------ errors


class CatalogError(Exception):
    """The catalog file is missing or wrong; the message names the file and the field."""


class UnknownPlan(CatalogError, LookupError):
    """A plan key the catalog does not define: a bug in the caller, not a user mistake."""

    def __init__(self, plan_key: object):
        super().__init__(f"Unknown plan {plan_key!r}")
        self.plan_key = plan_key


class QuoteError(ValueError):
    """A request that cannot be priced; `str(error)` is a message for the user."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    @property
    def kind(self) -> str:
        # The same names quote.js reports, so both sides can be compared.
        return type(self).__name__


class InvalidRequest(QuoteError):
    """A field is missing or of the wrong type (a bool, float or "8.5" where a whole number belongs)."""


class UnknownFeature(QuoteError):
    field = "feature"


class UnknownModel(QuoteError):
    field = "model"


class UnsupportedResolution(QuoteError):
    field = "resolution"


class OutOfRange(QuoteError):
    """A duration or count outside what the model offers."""


class TextTooLong(QuoteError):
    field = "text"

    def __init__(self, message: str, *, length: int, limit: int):
        super().__init__(message)
        self.length = length
        self.limit = limit


class PlanLimit(QuoteError):
    """Allowed by the model but not by the plan; `required_plan` is the cheapest plan that allows
    the request (None when no plan does)."""

    def __init__(
        self, message: str, *, required_plan: str | None, required_plan_name: str | None, field: str
    ):
        super().__init__(message, field=field)
        self.required_plan = required_plan
        self.required_plan_name = required_plan_name


# ----------------------------------------------------------------------- runtime classes


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
        return f"{format_exact(self.rate)} {_plural(self.rate, 'credit')}/{per}"


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

    def resolution_rank(self, key: str) -> int:
        for i, res in enumerate(self.resolutions):
            if res.key == key:
                return i
        raise KeyError(key)

    def model(self, key: str) -> Model:
        try:
            return self.models[key]
        except (KeyError, TypeError):
            raise UnknownModel(_unknown_model_message(self), field=self.selector) from None


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


@dataclass(frozen=True)
class GenerationRequest:
    """A request after validation: exactly the fields its model uses, as plain values."""

    feature: str
    model: str
    resolution: str | None = None
    duration: int | None = None
    count: int = 1
    text: str | None = None

    @property
    def characters(self) -> int | None:
        return None if self.text is None else len(self.text)

    def as_params(self) -> dict[str, Any]:
        """JSON-able; quote(req.as_params(), plan) prices it again to the same cost."""
        params: dict[str, Any] = {"feature": self.feature, "model": self.model, "count": self.count}
        if self.resolution is not None:
            params["resolution"] = self.resolution
        if self.duration is not None:
            params["duration"] = self.duration
        if self.text is not None:
            params["text"] = self.text
        return params


@dataclass(frozen=True)
class Quote:
    cost: int  # credits to debit; 0 when unlimited
    unlimited: bool
    units: int  # images: 1, seconds, or 100-character units
    breakdown: str  # how the cost was reached, for a tooltip or the job details
    request: GenerationRequest
    plan_key: str
    list_cost: int  # the price without the plan's unlimited: what staff watch for fair use

    @property
    def label(self) -> str:
        """What the Generate button shows after "Generate · "."""
        return "Unlimited" if self.unlimited else f"{self.cost:,} {_plural(self.cost, 'credit')}"


# ---------------------------------------------------------------------------- the catalog


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
            raise UnknownFeature(_unknown_feature_message(self)) from None

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

    # ---- pricing

    def parse_request(self, request: Mapping[str, Any] | GenerationRequest) -> GenerationRequest:
        """Validate a request against the models (not the plan). Raises QuoteError subclasses.

        The order of the checks is part of the contract: quote.js makes them in the same order,
        so a request with two mistakes gets the same error on both sides."""
        if isinstance(request, GenerationRequest):
            request = request.as_params()
        if not isinstance(request, Mapping):
            raise InvalidRequest("Send the generation settings as a set of fields")

        feature_key = request.get("feature")
        if not isinstance(feature_key, str):
            raise InvalidRequest("Choose a feature", field="feature")
        feature = self.feature(feature_key)

        model_key = request.get(feature.selector)
        if model_key is None and feature.selector != "model":
            model_key = request.get("model")
        if not isinstance(model_key, str):
            raise InvalidRequest(
                f"Choose a {feature.selector_label.lower()} for {feature.label}",
                field=feature.selector,
            )
        model = feature.model(model_key)

        resolution = None
        if model.resolutions:
            resolution = request.get("resolution")
            if not isinstance(resolution, str):
                raise InvalidRequest(f"Choose a resolution for {model.label}", field="resolution")
            if resolution not in model.multipliers:
                raise UnsupportedResolution(
                    _unsupported_resolution_message(feature, model, resolution)
                )

        duration = None
        if model.has_duration:
            duration = _whole_number(
                request.get("duration"), "Duration must be a whole number of seconds", "duration"
            )
            if model.duration_choices is not None:
                if duration not in model.duration_choices:
                    choices = _or_list([f"{_fmt_int(d)} s" for d in model.duration_choices])
                    raise OutOfRange(f"Duration must be {choices}", field="duration")
            elif not (model.duration_min <= duration <= model.duration_max):
                raise OutOfRange(
                    f"Duration must be between {_fmt_int(model.duration_min)} and {_fmt_int(model.duration_max)} seconds",
                    field="duration",
                )

        count = 1
        if model.has_count:
            count = _whole_number(request.get("count"), "Count must be a whole number", "count")
            if not (model.count_min <= count <= model.count_max):
                raise OutOfRange(
                    f"Count must be between {_fmt_int(model.count_min)} and {_fmt_int(model.count_max)}",
                    field="count",
                )

        text = None
        if model.has_text:
            text = request.get("text")
            if not isinstance(text, str) or _BLANK.fullmatch(text):
                raise InvalidRequest(
                    f"Enter the text for the {feature.label.lower()}", field="text"
                )
            if len(text) > model.max_chars:
                raise TextTooLong(
                    f"Text is {_fmt_int(len(text))} characters; the limit is {_fmt_int(model.max_chars)}",
                    length=len(text),
                    limit=model.max_chars,
                )

        return GenerationRequest(
            feature=feature.key,
            model=model.key,
            resolution=resolution,
            duration=duration,
            count=count,
            text=text,
        )

    def plan_limit(
        self,
        plan_key: str,
        feature: str,
        *,
        resolution: str | None = None,
        duration: int | None = None,
    ) -> PlanLimit | None:
        """The PlanLimit the plan puts on these settings (not raised), or None when allowed."""
        plan = self.plan(plan_key)
        feat = self.feature(feature)
        if resolution is not None and feat.resolution(resolution) is None:
            raise UnsupportedResolution(f"{feat.label} does not offer that resolution")
        broken = _plan_violations(plan, feat, resolution, duration)
        if not broken:
            return None
        parts = []
        for i, what in enumerate(broken):
            if what == "resolution":
                text = feat.resolution(resolution).label
            else:
                text = f"{feat.label} longer than {_fmt_int(plan.max_duration[feat.key])} s"
            parts.append(text if i == 0 else _lower_first(text))
        subject = " and ".join(parts)
        required = next(
            (p for p in self.plans if not _plan_violations(p, feat, resolution, duration)), None
        )
        if required is None:
            verb = "is" if len(parts) == 1 else "are"
            message = f"{subject} {verb} not available on any plan"
        else:
            verb = "needs" if len(parts) == 1 else "need"
            message = f"{subject} {verb} the {required.name} plan or higher"
        return PlanLimit(
            message,
            required_plan=required.key if required else None,
            required_plan_name=required.name if required else None,
            field=broken[0],
        )

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
        plan = self.plan(plan_key)
        req = self.parse_request(request)
        limit = self.plan_limit(
            plan.key, req.feature, resolution=req.resolution, duration=req.duration
        )
        if limit is not None:
            raise limit

        model = self.features[req.feature].models[req.model]
        if model.unit == "second":
            units = req.duration
        elif model.unit == "characters":
            units = max(model.min_units, -(-len(req.text) // model.chars_per_unit))
        else:
            units = 1
        multiplier = (
            model.multipliers[req.resolution] if req.resolution is not None else Fraction(1)
        )
        exact = model.rate * units * multiplier * req.count
        cost = math.ceil(exact)

        if plan.is_unlimited(req.feature, req.model):
            breakdown = f"{model.label} is unlimited on the {plan.name} plan"
            return Quote(
                cost=0,
                unlimited=True,
                units=units,
                breakdown=breakdown,
                request=req,
                plan_key=plan.key,
                list_cost=cost,
            )
        return Quote(
            cost=cost,
            unlimited=False,
            units=units,
            breakdown=_breakdown(
                self.features[req.feature], model, req, units, multiplier, exact, cost
            ),
            request=req,
            plan_key=plan.key,
            list_cost=cost,
        )

    # ---- what the UI needs

    def feature_options(self, feature: str, plan_key: str) -> dict[str, Any]:
        """Every choice the Generate form offers for `feature` on `plan_key`, JSON-able.

        Each model, resolution and duration carries `locked` (the plan does not allow it),
        `reason` (a sentence for the user) and `unlock_plan` / `unlock_plan_name` (the cheapest
        plan that allows it). `default_*` are the first choices the plan allows."""
        plan = self.plan(plan_key)
        feat = self.feature(feature)
        models = []
        for model in feat.models.values():
            resolutions = []
            for key in model.resolutions:
                res = feat.resolution(key)
                resolutions.append(
                    {
                        "key": key,
                        "label": res.label,
                        "multiplier": format_exact(model.multipliers[key]),
                        **_lock_fields(self.plan_limit(plan.key, feat.key, resolution=key)),
                    }
                )
            durations = [
                {
                    "value": d,
                    "label": f"{_fmt_int(d)} s",
                    **_lock_fields(self.plan_limit(plan.key, feat.key, duration=d)),
                }
                for d in model.durations
            ]
            counts = [
                {"value": c, "label": _fmt_int(c), **_lock_fields(None)}
                for c in range(model.count_min, model.count_max + 1)
            ]
            # A model is locked only when the plan allows none of its resolutions or durations.
            model_lock = None
            for options in (resolutions, durations):
                if options and all(o["locked"] for o in options):
                    model_lock = options[0]
                    break
            models.append(
                {
                    "key": model.key,
                    "label": model.label,
                    "rate": format_exact(model.rate),
                    "rate_label": model.rate_label,
                    "unit": model.unit,
                    "unlimited": plan.is_unlimited(feat.key, model.key),
                    "locked": model_lock is not None,
                    "reason": model_lock["reason"] if model_lock else "",
                    "unlock_plan": model_lock["unlock_plan"] if model_lock else None,
                    "unlock_plan_name": model_lock["unlock_plan_name"] if model_lock else None,
                    "resolutions": resolutions,
                    "durations": durations,
                    "duration_min": model.durations[0] if model.durations else None,
                    "duration_max": model.durations[-1] if model.durations else None,
                    "counts": counts if model.has_count else [],
                    "chars_per_unit": model.chars_per_unit,
                    "max_chars": model.max_chars,
                    "default_resolution": _first_unlocked(resolutions, "key"),
                    "default_duration": _first_unlocked(durations, "value"),
                    "default_count": model.count_min if model.has_count else None,
                }
            )
        return {
            "key": feat.key,
            "label": feat.label,
            "selector": feat.selector,
            "selector_label": feat.selector_label,
            "plan": plan.key,
            "models": models,
        }

    def for_browser(self) -> dict[str, Any]:
        """Everything quote.js needs, JSON-able. Exact numbers travel as "n/d" strings; data-keyed
        things are lists, so no catalog key can collide with a JavaScript object property."""
        return {
            "schema_version": self.schema_version,
            "digest": self.digest,
            "default_plan": self.default_plan_key,
            "currency": self.currency,
            "features": [
                {
                    "key": f.key,
                    "label": f.label,
                    "selector": f.selector,
                    "selector_label": f.selector_label,
                    "resolutions": [{"key": r.key, "label": r.label} for r in f.resolutions],
                    "models": [
                        {
                            "key": m.key,
                            "label": m.label,
                            "rate": _ratio_text(m.rate),
                            "unit": m.unit,
                            "resolutions": [
                                {"key": k, "multiplier": _ratio_text(m.multipliers[k])}
                                for k in m.resolutions
                            ],
                            "duration_choices": list(m.duration_choices)
                            if m.duration_choices is not None
                            else None,
                            "duration_min": m.duration_min,
                            "duration_max": m.duration_max,
                            "has_count": m.has_count,
                            "count_min": m.count_min,
                            "count_max": m.count_max,
                            "chars_per_unit": m.chars_per_unit,
                            "max_chars": m.max_chars,
                            "min_units": m.min_units,
                        }
                        for m in f.models.values()
                    ],
                }
                for f in self.features.values()
            ],
            "plans": [
                {
                    "key": p.key,
                    "name": p.name,
                    "rank": p.rank,
                    "price_cents": p.price_cents,
                    "monthly_credits": p.monthly_credits,
                    "max_concurrent": p.max_concurrent,
                    "unlimited": [list(pair) for pair in p.unlimited],
                    "max_resolution": [[f, r] for f, r in p.max_resolution.items()],
                    "max_duration": [[f, s] for f, s in p.max_duration.items()],
                }
                for p in self.plans
            ],
        }


# ------------------------------------------------------------------------ file schema
# The raw shape of catalog.toml, checked by pydantic (types, required and unknown fields);
# the rules that span fields are checked afterwards in _build, with the same kind of path.


def _exact_number(value: Any) -> Fraction:
    if isinstance(value, bool):
        raise PydanticCustomError("exact_number", "must be a positive number")
    if isinstance(value, int):
        number = Fraction(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("exact_number", "must be a positive number")
        number = Fraction(value)
    elif isinstance(value, float):  # only from parse_catalog(dict): read it as written
        if not math.isfinite(value):
            raise PydanticCustomError("exact_number", "must be a positive number")
        number = Fraction(Decimal(repr(value)))
    elif isinstance(value, str) and (
        _DECIMAL_TEXT.fullmatch(value) or _FRACTION_TEXT.fullmatch(value)
    ):
        try:
            number = Fraction(value)
        except ZeroDivisionError:
            raise PydanticCustomError("exact_number", "must be a positive number") from None
    else:
        raise PydanticCustomError("exact_number", "must be a positive number")
    if number <= 0:
        raise PydanticCustomError("exact_number", "must be a positive number")
    if number.denominator > 1_000_000:
        raise PydanticCustomError("exact_number", "must have at most 6 decimal places")
    return number


_Exact = Annotated[Any, BeforeValidator(_exact_number)]
_Label = Annotated[str, StringConstraints(min_length=1, max_length=80)]
_PositiveInt = Annotated[int, Field(ge=1)]
_NonNegativeInt = Annotated[int, Field(ge=0)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ResolutionSpec(_Spec):
    label: _Label
    multiplier: _Exact


class _DurationSpec(_Spec):
    choices: list[_PositiveInt] | None = None
    min: _PositiveInt | None = None
    max: _PositiveInt | None = None

    @model_validator(mode="after")
    def _one_form(self) -> _DurationSpec:
        if self.choices is not None:
            if self.min is not None or self.max is not None:
                raise PydanticCustomError(
                    "duration", "give either choices or min and max, not both"
                )
            if not self.choices:
                raise PydanticCustomError("duration", "choices must not be empty")
            if any(b <= a for a, b in zip(self.choices, self.choices[1:])):
                raise PydanticCustomError(
                    "duration", "choices must go from shortest to longest, without repeats"
                )
            if self.choices[-1] > _MAX_SECONDS:
                raise PydanticCustomError(
                    "duration", f"choices must be at most {_MAX_SECONDS} seconds"
                )
        else:
            if self.min is None or self.max is None:
                raise PydanticCustomError("duration", "give either choices or both min and max")
            if self.max < self.min:
                raise PydanticCustomError("duration", "max must be at least min")
            if self.max > _MAX_SECONDS:
                raise PydanticCustomError("duration", f"max must be at most {_MAX_SECONDS} seconds")
        return self


class _CountSpec(_Spec):
    min: _PositiveInt
    max: _PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> _CountSpec:
        if self.max < self.min:
            raise PydanticCustomError("count", "max must be at least min")
        if self.max > _MAX_COUNT:
            raise PydanticCustomError("count", f"max must be at most {_MAX_COUNT}")
        return self


class _ModelSpec(_Spec):
    label: _Label
    rate: _Exact
    unit: Literal["image", "second", "characters"]
    resolutions: list[str] | None = None
    multipliers: dict[str, _Exact] = {}
    duration: _DurationSpec | None = None
    count: _CountSpec | None = None
    chars_per_unit: _PositiveInt | None = None
    max_chars: _PositiveInt | None = None
    min_units: _PositiveInt | None = None


class _FeatureSpec(_Spec):
    label: _Label
    selector: Literal["model", "mode"] = "model"
    selector_label: _Label | None = None
    resolutions: dict[str, _ResolutionSpec] = {}
    models: dict[str, _ModelSpec]


class _UnlimitedSpec(_Spec):
    feature: str
    model: str


class _PlanSpec(_Spec):
    name: _Label
    rank: _NonNegativeInt
    price_cents: _NonNegativeInt
    monthly_credits: _NonNegativeInt
    trial_credits: _NonNegativeInt = 0
    max_concurrent: _PositiveInt
    unlimited: list[_UnlimitedSpec] = []
    max_resolution: dict[str, str] = {}
    max_duration: dict[str, _PositiveInt] = {}
    highlights: list[_Label] = []
    description: str = ""


class _PackSpec(_Spec):
    label: _Label
    credits: Annotated[int, Field(ge=1, le=_MAX_PACK_CREDITS)]
    # Stripe refuses card payments under 50 cents.
    price_cents: Annotated[int, Field(ge=50, le=_MAX_PACK_CENTS)]


class _CatalogSpec(_Spec):
    schema_version: Literal[1]
    default_plan: str
    currency: Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")] = "usd"
    features: dict[str, _FeatureSpec]
    plans: dict[str, _PlanSpec]
    pack_expiry_months: Annotated[int, Field(ge=1, le=120)] = 12
    packs: dict[str, _PackSpec] = {}
    broken_result_refunds_per_month: Annotated[int, Field(ge=0, le=100)] = 3


class _Problem(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _pydantic_problem(error: dict[str, Any]) -> tuple[str, str]:
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    message = {
        "missing": "is required",
        "extra_forbidden": "is not a known field (check the spelling)",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "string_type": "must be text",
        "list_type": "must be a list",
        "dict_type": "must be a table",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
        "string_too_short": "must not be empty",
        "string_pattern_mismatch": 'must be a three-letter lowercase currency code, like "usd"',
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "literal_error": f"must be {ctx.get('expected')}",
    }.get(kind)
    if message is None:
        message = error["msg"][:1].lower() + error["msg"][1:]
    return path or "(top level)", message


def parse_catalog(
    data: Mapping[str, Any], *, source: str = "catalog.toml", digest: str = ""
) -> Catalog:
    """Validate already-parsed catalog data (what tomllib returns) and build the Catalog."""
    try:
        spec = _CatalogSpec.model_validate(data)
    except ValidationError as exc:
        # An unknown field first: a misspelt name also shows up as the real one "missing".
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        path, message = _pydantic_problem(errors[0])
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise CatalogError(f"{source}: {path}: {message}{more}") from None
    try:
        return _build(spec, source=source, digest=digest)
    except _Problem as problem:
        raise CatalogError(f"{source}: {problem.path}: {problem.message}") from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: settings.catalog_path). Raises CatalogError."""
    if path is None:
        from workroom_app.settings import get_settings

        path = get_settings().catalog_path
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            f"{path}: cannot read the catalog file ({exc.strerror or exc})"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError:
        raise CatalogError(f"{path.name}: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_catalog(data, source=path.name, digest=hashlib.sha256(raw).hexdigest())


def _build(spec: _CatalogSpec, *, source: str, digest: str) -> Catalog:
    if not spec.features:
        raise _Problem("features", "must define at least one feature")
    features: dict[str, Feature] = {}
    for fkey, fspec in spec.features.items():
        fpath = f"features.{fkey}"
        if not _KEY.fullmatch(fkey):
            raise _Problem(
                fpath,
                "a feature key must be lowercase letters, digits and _ (starting with a letter)",
            )
        ladder = []
        for rkey, rspec in fspec.resolutions.items():
            rpath = f"{fpath}.resolutions.{rkey}"
            if not _RESOLUTION_KEY.fullmatch(rkey):
                raise _Problem(rpath, "a resolution key must be letters and digits only")
            _check_bound(f"{rpath}.multiplier", rspec.multiplier, _MAX_MULTIPLIER)
            ladder.append(Resolution(key=rkey, label=rspec.label, multiplier=rspec.multiplier))
        if not fspec.models:
            raise _Problem(f"{fpath}.models", "must define at least one model")
        models = {}
        for mkey, mspec in fspec.models.items():
            models[mkey] = _build_model(fkey, mkey, mspec, ladder, f"{fpath}.models.{mkey}")
        features[fkey] = Feature(
            key=fkey,
            label=fspec.label,
            selector=fspec.selector,
            selector_label=fspec.selector_label or fspec.selector.capitalize(),
            resolutions=tuple(ladder),
            models=MappingProxyType(models),
        )

    if not spec.plans:
        raise _Problem("plans", "must define at least one plan")
    plans = []
    for pkey, pspec in spec.plans.items():
        ppath = f"plans.{pkey}"
        if not _KEY.fullmatch(pkey):
            raise _Problem(
                ppath, "a plan key must be lowercase letters, digits and _ (starting with a letter)"
            )
        unlimited = []
        for i, pair in enumerate(pspec.unlimited):
            upath = f"{ppath}.unlimited[{i}]"
            if pair.feature not in features:
                raise _Problem(
                    f"{upath}.feature", f"{pair.feature!r} is not a feature of the catalog"
                )
            if pair.model not in features[pair.feature].models:
                raise _Problem(
                    f"{upath}.model", f"{pair.model!r} is not a model of features.{pair.feature}"
                )
            if (pair.feature, pair.model) in unlimited:
                raise _Problem(upath, "is listed twice")
            unlimited.append((pair.feature, pair.model))
        for fkey, rkey in pspec.max_resolution.items():
            mpath = f"{ppath}.max_resolution.{fkey}"
            if fkey not in features:
                raise _Problem(mpath, f"{fkey!r} is not a feature of the catalog")
            if features[fkey].resolution(rkey) is None:
                offered = ", ".join(r.key for r in features[fkey].resolutions) or "none"
                raise _Problem(
                    mpath, f"{rkey!r} is not a resolution of features.{fkey} ({offered})"
                )
        for fkey in pspec.max_duration:
            mpath = f"{ppath}.max_duration.{fkey}"
            if fkey not in features:
                raise _Problem(mpath, f"{fkey!r} is not a feature of the catalog")
            if not any(m.has_duration for m in features[fkey].models.values()):
                raise _Problem(mpath, f"features.{fkey} has no model with a duration")
        plans.append(
            Plan(
                key=pkey,
                name=pspec.name,
                rank=pspec.rank,
                price_cents=pspec.price_cents,
                monthly_credits=pspec.monthly_credits,
                trial_credits=pspec.trial_credits,
                max_concurrent=pspec.max_concurrent,
                unlimited=tuple(unlimited),
                max_resolution=MappingProxyType(dict(pspec.max_resolution)),
                max_duration=MappingProxyType(dict(pspec.max_duration)),
                highlights=tuple(pspec.highlights),
                description=pspec.description,
            )
        )

    plans.sort(key=lambda p: p.rank)
    for lower, higher in zip(plans, plans[1:]):
        hpath = f"plans.{higher.key}"
        if higher.rank == lower.rank:
            raise _Problem(
                f"{hpath}.rank",
                f"is the same as plans.{lower.key}.rank; every plan needs its own rank",
            )
        if higher.price_cents <= lower.price_cents:
            raise _Problem(
                f"{hpath}.price_cents",
                f"must be more than plans.{lower.key}.price_cents (plans are ranked by price)",
            )
        if higher.max_concurrent < lower.max_concurrent:
            raise _Problem(
                f"{hpath}.max_concurrent", f"must be at least plans.{lower.key}.max_concurrent"
            )
        # A higher plan allows at least what a lower one does, so "the cheapest plan that
        # allows it" is always an upgrade.
        for fkey, feature in features.items():
            lo, hi = lower.max_resolution.get(fkey), higher.max_resolution.get(fkey)
            if hi is not None and (
                lo is None or feature.resolution_rank(hi) < feature.resolution_rank(lo)
            ):
                raise _Problem(
                    f"{hpath}.max_resolution.{fkey}",
                    f"must be at least what plans.{lower.key} allows",
                )
            lo_s, hi_s = lower.max_duration.get(fkey), higher.max_duration.get(fkey)
            if hi_s is not None and (lo_s is None or hi_s < lo_s):
                raise _Problem(
                    f"{hpath}.max_duration.{fkey}",
                    f"must be at least what plans.{lower.key} allows",
                )

    by_key = {p.key: p for p in plans}
    if spec.default_plan not in by_key:
        raise _Problem("default_plan", f"{spec.default_plan!r} is not a plan of the catalog")
    if by_key[spec.default_plan].paid:
        raise _Problem("default_plan", "must be a plan with price_cents = 0")

    packs = []
    for key, pack_spec in spec.packs.items():
        if not _KEY.fullmatch(key):
            raise _Problem(
                f"packs.{key}",
                "a pack key must be lowercase letters, digits and _ (starting with a letter)",
            )
        if any(p.credits == pack_spec.credits for p in packs):
            raise _Problem(f"packs.{key}.credits", "another pack already has this many credits")
        packs.append(
            CreditPack(
                key=key,
                label=pack_spec.label,
                credits=pack_spec.credits,
                price_cents=pack_spec.price_cents,
            )
        )

    return Catalog(
        features=features,
        plans=tuple(plans),
        default_plan=spec.default_plan,
        schema_version=spec.schema_version,
        currency=spec.currency,
        source=source,
        digest=digest,
        packs=tuple(packs),
        pack_expiry_months=spec.pack_expiry_months,
        broken_result_refunds_per_month=spec.broken_result_refunds_per_month,
    )


def _build_model(
    fkey: str, mkey: str, spec: _ModelSpec, ladder: list[Resolution], mpath: str
) -> Model:
    if not _KEY.fullmatch(mkey):
        raise _Problem(
            mpath, "a model key must be lowercase letters, digits and _ (starting with a letter)"
        )
    _check_bound(f"{mpath}.rate", spec.rate, _MAX_RATE)
    ladder_keys = [r.key for r in ladder]
    if spec.resolutions is None:
        allowed = ladder_keys
    else:
        for i, rkey in enumerate(spec.resolutions):
            if rkey not in ladder_keys:
                offered = ", ".join(ladder_keys) or "none"
                raise _Problem(
                    f"{mpath}.resolutions[{i}]",
                    f"{rkey!r} is not a resolution of features.{fkey} ({offered})",
                )
        if len(set(spec.resolutions)) != len(spec.resolutions):
            raise _Problem(f"{mpath}.resolutions", "lists a resolution twice")
        allowed = [k for k in ladder_keys if k in spec.resolutions]
    multipliers = {r.key: r.multiplier for r in ladder if r.key in allowed}
    for rkey, value in spec.multipliers.items():
        if rkey not in multipliers:
            raise _Problem(f"{mpath}.multipliers.{rkey}", "is not a resolution this model offers")
        _check_bound(f"{mpath}.multipliers.{rkey}", value, _MAX_MULTIPLIER)
        multipliers[rkey] = value

    if spec.unit == "second" and spec.duration is None:
        raise _Problem(f"{mpath}.duration", 'is required when unit is "second"')
    if spec.unit != "second" and spec.duration is not None:
        raise _Problem(f"{mpath}.duration", 'is only for models whose unit is "second"')
    if spec.unit == "characters":
        for name in ("chars_per_unit", "max_chars"):
            if getattr(spec, name) is None:
                raise _Problem(f"{mpath}.{name}", 'is required when unit is "characters"')
        if spec.max_chars > _MAX_CHARS:
            raise _Problem(f"{mpath}.max_chars", f"must be at most {_MAX_CHARS}")
    else:
        for name in ("chars_per_unit", "max_chars", "min_units"):
            if getattr(spec, name) is not None:
                raise _Problem(f"{mpath}.{name}", 'is only for models whose unit is "characters"')

    duration = spec.duration
    return Model(
        feature=fkey,
        key=mkey,
        label=spec.label,
        rate=spec.rate,
        unit=spec.unit,
        resolutions=tuple(allowed),
        multipliers=MappingProxyType(multipliers),
        duration_choices=tuple(duration.choices)
        if duration and duration.choices is not None
        else None,
        duration_min=duration.min if duration else None,
        duration_max=duration.max if duration else None,
        count_min=spec.count.min if spec.count else 1,
        count_max=spec.count.max if spec.count else 1,
        has_count=spec.count is not None,
        chars_per_unit=spec.chars_per_unit,
        max_chars=spec.max_chars,
        min_units=spec.min_units or 1,
    )


def _check_bound(path: str, value: Fraction, bound: int) -> None:
    if value > bound:
        raise _Problem(path, f"must be at most {bound:,}")


# ---------------------------------------------------------------------------- helpers


def _whole_number(value: Any, message: str, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(message, field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        negative = value.startswith("-")
        if len(value) - negative > _MAX_INT_DIGITS:
            return -_HUGE if negative else _HUGE
        return int(value)
    raise InvalidRequest(message, field=field)


def _plan_violations(
    plan: Plan, feature: Feature, resolution: str | None, duration: int | None
) -> list[str]:
    broken = []
    cap = plan.max_resolution.get(feature.key)
    if resolution is not None and cap is not None:
        if feature.resolution_rank(resolution) > feature.resolution_rank(cap):
            broken.append("resolution")
    longest = plan.max_duration.get(feature.key)
    if duration is not None and longest is not None and duration > longest:
        broken.append("duration")
    return broken


def _lock_fields(limit: PlanLimit | None) -> dict[str, Any]:
    return {
        "locked": limit is not None,
        "reason": limit.message if limit else "",
        "unlock_plan": limit.required_plan if limit else None,
        "unlock_plan_name": limit.required_plan_name if limit else None,
    }


def _first_unlocked(options: list[dict[str, Any]], key: str) -> Any:
    return next((o[key] for o in options if not o["locked"]), None)


def _unknown_feature_message(catalog: Catalog) -> str:
    return f"Unknown feature. Choose {_or_list([f.label for f in catalog.features.values()])}."


def _unknown_model_message(feature: Feature) -> str:
    labels = _or_list([m.label for m in feature.models.values()])
    return f"Unknown {feature.selector_label.lower()} for {feature.label}. Choose {labels}."


def _unsupported_resolution_message(feature: Feature, model: Model, resolution: str) -> str:
    offered = _or_list([feature.resolution(k).label for k in model.resolutions])
    res = feature.resolution(resolution)
    what = res.label if res is not None else "that resolution"
    return f"{model.label} does not offer {what}. Choose {offered}."


def _breakdown(
    feature: Feature,
    model: Model,
    req: GenerationRequest,
    units: int,
    multiplier: Fraction,
    exact: Fraction,
    cost: int,
) -> str:
    parts = [model.rate_label]
    if model.unit == "second":
        parts.append(f"{_fmt_int(units)} s")
    elif model.unit == "characters":
        parts.append(
            f"{_fmt_int(units)} {_plural(units, 'unit')} ({_fmt_int(len(req.text))} characters)"
        )
    if req.resolution is not None:
        parts.append(f"{format_exact(multiplier)} ({feature.resolution(req.resolution).label})")
    if model.has_count:
        word = "image" if model.unit == "image" else "generation"
        parts.append(f"{_fmt_int(req.count)} {_plural(req.count, word)}")
    total = f"{_fmt_int(cost)} {_plural(cost, 'credit')}"
    if exact != cost:
        total = f"{format_exact(exact)}, rounded up to {total}"
    name = (
        model.label
        if feature.selector == "model"
        else f"{feature.label} ({_lower_first(model.label)})"
    )
    return f"{name}: {' × '.join(parts)} = {total}"


def format_exact(value: Fraction) -> str:
    """A Fraction as people write it: "40", "1.5", "0.8"; "2/3" when no decimal is exact."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ratio_text(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _plural(n: int | Fraction, word: str) -> str:
    return word if n == 1 else word + "s"


def _or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# ----------------------------------------------------------------- module-level helpers


@lru_cache(maxsize=4)
def _cached(path: str) -> Catalog:
    return load_catalog(path)


def get_catalog() -> Catalog:
    """The catalog at settings.catalog_path, loaded once per process (reload_catalog() to re-read)."""
    from workroom_app.settings import get_settings

    return _cached(str(get_settings().catalog_path))


def reload_catalog() -> Catalog:
    _cached.cache_clear()
    return get_catalog()


def quote(
    request: Mapping[str, Any] | GenerationRequest, plan_key: str, *, catalog: Catalog | None = None
) -> Quote:
    return (catalog or get_catalog()).quote(request, plan_key)


def feature_options(
    feature: str, plan_key: str, *, catalog: Catalog | None = None
) -> dict[str, Any]:
    return (catalog or get_catalog()).feature_options(feature, plan_key)


def plan_limit(
    plan_key: str,
    feature: str,
    *,
    resolution: str | None = None,
    duration: int | None = None,
    catalog: Catalog | None = None,
) -> PlanLimit | None:
    return (catalog or get_catalog()).plan_limit(
        plan_key, feature, resolution=resolution, duration=duration
    )


def plan_allows(
    plan_key: str,
    feature: str,
    *,
    resolution: str | None = None,
    duration: int | None = None,
    catalog: Catalog | None = None,
) -> bool:
    return (catalog or get_catalog()).plan_allows(
        plan_key, feature, resolution=resolution, duration=duration
    )


def max_concurrent(plan_key: str, *, catalog: Catalog | None = None) -> int:
    return (catalog or get_catalog()).max_concurrent(plan_key)


def catalog_for_browser(catalog: Catalog | None = None) -> dict[str, Any]:
    return (catalog or get_catalog()).for_browser()

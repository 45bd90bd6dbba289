"""Pricing: `quote` checks a request against the models, then the plan, and prices it exactly.

The order of the checks and every message are part of the contract with assets/quote.js, the
browser twin of this module: tests/billing/test_quote_parity.py holds the two to the same answers.
Arithmetic is exact (Fractions), rounded up once at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from workroom_app.billing.catalog.errors import (
    InvalidRequest,
    OutOfRange,
    PlanLimit,
    TextTooLong,
    UnsupportedResolution,
)
from workroom_app.billing.catalog.wording import (
    fmt_int,
    format_exact,
    lower_first,
    or_list,
    plural,
    unsupported_resolution_message,
)

if TYPE_CHECKING:
    from workroom_app.billing.catalog.model import Catalog, Feature, Model, Plan

# Integers sent as text are read only when they are plain digits: "8" is 8; "8.5", "1e9", " 8"
# and "+8" are refused. Longer than this many digits is simply out of any range, which keeps
# int() away from huge strings and gives the same answer as JavaScript's Number().
_INT_TEXT = re.compile(r"-?[0-9]+")
_MAX_INT_DIGITS = 15
_HUGE = 10**15
_BLANK = re.compile(r"[ \t\n\r\f\v]*")  # the same set as quote.js, so both call the same text blank


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
        return "Unlimited" if self.unlimited else f"{self.cost:,} {plural(self.cost, 'credit')}"


def parse_request(
    catalog: Catalog, request: Mapping[str, Any] | GenerationRequest
) -> GenerationRequest:
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
    feature = catalog.feature(feature_key)

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
            raise UnsupportedResolution(unsupported_resolution_message(feature, model, resolution))

    duration = None
    if model.has_duration:
        duration = _whole_number(
            request.get("duration"), "Duration must be a whole number of seconds", "duration"
        )
        if model.duration_choices is not None:
            if duration not in model.duration_choices:
                choices = or_list([f"{fmt_int(d)} s" for d in model.duration_choices])
                raise OutOfRange(f"Duration must be {choices}", field="duration")
        else:
            # The loader sets both bounds for a model without a list of choices.
            shortest, longest = model.duration_min, model.duration_max
            assert shortest is not None and longest is not None
            if not (shortest <= duration <= longest):
                raise OutOfRange(
                    f"Duration must be between {fmt_int(shortest)} and {fmt_int(longest)} seconds",
                    field="duration",
                )

    count = 1
    if model.has_count:
        count = _whole_number(request.get("count"), "Count must be a whole number", "count")
        if not (model.count_min <= count <= model.count_max):
            raise OutOfRange(
                f"Count must be between {fmt_int(model.count_min)} and {fmt_int(model.count_max)}",
                field="count",
            )

    text = None
    if model.has_text:
        text = request.get("text")
        if not isinstance(text, str) or _BLANK.fullmatch(text):
            raise InvalidRequest(f"Enter the text for the {feature.label.lower()}", field="text")
        max_chars = model.max_chars
        assert max_chars is not None  # the loader requires it of a "characters" model
        if len(text) > max_chars:
            raise TextTooLong(
                f"Text is {fmt_int(len(text))} characters; the limit is {fmt_int(max_chars)}",
                length=len(text),
                limit=max_chars,
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
    catalog: Catalog,
    plan_key: str,
    feature: str,
    *,
    resolution: str | None = None,
    duration: int | None = None,
) -> PlanLimit | None:
    """The PlanLimit the plan puts on these settings (not raised), or None when allowed."""
    plan = catalog.plan(plan_key)
    feat = catalog.feature(feature)
    if resolution is not None and feat.resolution(resolution) is None:
        raise UnsupportedResolution(f"{feat.label} does not offer that resolution")
    broken = _plan_violations(plan, feat, resolution, duration)
    if not broken:
        return None
    parts = []
    for i, what in enumerate(broken):
        if what == "resolution" and resolution is not None:
            text = feat.resolution_label(resolution)
        else:
            text = f"{feat.label} longer than {fmt_int(plan.max_duration[feat.key])} s"
        parts.append(text if i == 0 else lower_first(text))
    subject = " and ".join(parts)
    required = next(
        (p for p in catalog.plans if not _plan_violations(p, feat, resolution, duration)), None
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
    catalog: Catalog,
    plan_key: str,
    feature: str,
    *,
    resolution: str | None = None,
    duration: int | None = None,
) -> bool:
    return catalog.plan_limit(plan_key, feature, resolution=resolution, duration=duration) is None


def quote(catalog: Catalog, request: Mapping[str, Any] | GenerationRequest, plan_key: str) -> Quote:
    """Price a request for an account on `plan_key`. Raises QuoteError subclasses (and
    UnknownPlan for a plan key the catalog does not know)."""
    plan = catalog.plan(plan_key)
    req = catalog.parse_request(request)
    limit = catalog.plan_limit(
        plan.key, req.feature, resolution=req.resolution, duration=req.duration
    )
    if limit is not None:
        raise limit

    model = catalog.features[req.feature].models[req.model]
    units = _units(model, req)
    multiplier = model.multipliers[req.resolution] if req.resolution is not None else Fraction(1)
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
            catalog.features[req.feature], model, req, units, multiplier, exact, cost
        ),
        request=req,
        plan_key=plan.key,
        list_cost=cost,
    )


def _units(model: Model, req: GenerationRequest) -> int:
    """What the rate is multiplied by: seconds, 100-character units (at least min_units), or 1.
    parse_request has checked the request against the model, so its fields are there."""
    if model.unit == "second":
        assert req.duration is not None
        return req.duration
    if model.unit == "characters":
        assert req.text is not None and model.chars_per_unit is not None
        return max(model.min_units, -(-len(req.text) // model.chars_per_unit))
    return 1


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
    if (
        resolution is not None
        and cap is not None
        and feature.resolution_rank(resolution) > feature.resolution_rank(cap)
    ):
        broken.append("resolution")
    longest = plan.max_duration.get(feature.key)
    if duration is not None and longest is not None and duration > longest:
        broken.append("duration")
    return broken


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
        parts.append(f"{fmt_int(units)} s")
    elif model.unit == "characters":
        parts.append(
            f"{fmt_int(units)} {plural(units, 'unit')} ({fmt_int(req.characters or 0)} characters)"
        )
    if req.resolution is not None:
        parts.append(f"{format_exact(multiplier)} ({feature.resolution_label(req.resolution)})")
    if model.has_count:
        word = "image" if model.unit == "image" else "generation"
        parts.append(f"{fmt_int(req.count)} {plural(req.count, word)}")
    total = f"{fmt_int(cost)} {plural(cost, 'credit')}"
    if exact != cost:
        total = f"{format_exact(exact)}, rounded up to {total}"
    name = (
        model.label
        if feature.selector == "model"
        else f"{feature.label} ({lower_first(model.label)})"
    )
    return f"{name}: {' × '.join(parts)} = {total}"

"""The raw shape of catalog.toml, checked by pydantic (types, required and unknown fields);
the rules that span fields are checked afterwards by loader.py, with the same kind of path."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_FRACTION_TEXT = re.compile(r"[0-9]+/[0-9]+")

# Bounds that keep every product far inside exact integer range on both sides (the ones the
# file schema checks; loader.py checks the rest).
_MAX_SECONDS = 86_400
_MAX_COUNT = 1_000
_MAX_PACK_CREDITS = 10_000_000
_MAX_PACK_CENTS = 10_000_000  # $100,000


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


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ResolutionSpec(Spec):
    label: _Label
    multiplier: _Exact


class DurationSpec(Spec):
    choices: list[_PositiveInt] | None = None
    min: _PositiveInt | None = None
    max: _PositiveInt | None = None

    @model_validator(mode="after")
    def _one_form(self) -> DurationSpec:
        if self.choices is not None:
            if self.min is not None or self.max is not None:
                raise PydanticCustomError(
                    "duration", "give either choices or min and max, not both"
                )
            if not self.choices:
                raise PydanticCustomError("duration", "choices must not be empty")
            if any(b <= a for a, b in pairwise(self.choices)):
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


class CountSpec(Spec):
    min: _PositiveInt
    max: _PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> CountSpec:
        if self.max < self.min:
            raise PydanticCustomError("count", "max must be at least min")
        if self.max > _MAX_COUNT:
            raise PydanticCustomError("count", f"max must be at most {_MAX_COUNT}")
        return self


class ModelSpec(Spec):
    label: _Label
    rate: _Exact
    unit: Literal["image", "second", "characters"]
    resolutions: list[str] | None = None
    multipliers: dict[str, _Exact] = {}
    duration: DurationSpec | None = None
    count: CountSpec | None = None
    chars_per_unit: _PositiveInt | None = None
    max_chars: _PositiveInt | None = None
    min_units: _PositiveInt | None = None


class FeatureSpec(Spec):
    label: _Label
    selector: Literal["model", "mode"] = "model"
    selector_label: _Label | None = None
    resolutions: dict[str, ResolutionSpec] = {}
    models: dict[str, ModelSpec]


class UnlimitedSpec(Spec):
    feature: str
    model: str


class PlanSpec(Spec):
    name: _Label
    rank: _NonNegativeInt
    price_cents: _NonNegativeInt
    monthly_credits: _NonNegativeInt
    trial_credits: _NonNegativeInt = 0
    max_concurrent: _PositiveInt
    unlimited: list[UnlimitedSpec] = []
    max_resolution: dict[str, str] = {}
    max_duration: dict[str, _PositiveInt] = {}
    highlights: list[_Label] = []
    description: str = ""


class PackSpec(Spec):
    label: _Label
    credits: Annotated[int, Field(ge=1, le=_MAX_PACK_CREDITS)]
    # Stripe refuses card payments under 50 cents.
    price_cents: Annotated[int, Field(ge=50, le=_MAX_PACK_CENTS)]


class CatalogSpec(Spec):
    schema_version: Literal[1]
    default_plan: str
    currency: Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")] = "usd"
    features: dict[str, FeatureSpec]
    plans: dict[str, PlanSpec]
    pack_expiry_months: Annotated[int, Field(ge=1, le=120)] = 12
    packs: dict[str, PackSpec] = {}
    broken_result_refunds_per_month: Annotated[int, Field(ge=0, le=100)] = 3

"""How the catalog writes numbers and lists in messages ("1.5", "2/3", "a, b or c"), shared by
the pricing messages, the rate labels and the Generate form."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workroom_app.billing.catalog.model import Catalog, Feature, Model


def unknown_feature_message(catalog: Catalog) -> str:
    return f"Unknown feature. Choose {or_list([f.label for f in catalog.features.values()])}."


def unknown_model_message(feature: Feature) -> str:
    labels = or_list([m.label for m in feature.models.values()])
    return f"Unknown {feature.selector_label.lower()} for {feature.label}. Choose {labels}."


def unsupported_resolution_message(feature: Feature, model: Model, resolution: str) -> str:
    offered = or_list([feature.resolution_label(k) for k in model.resolutions])
    res = feature.resolution(resolution)
    what = res.label if res is not None else "that resolution"
    return f"{model.label} does not offer {what}. Choose {offered}."


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


def ratio_text(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def fmt_int(n: int) -> str:
    return f"{n:,}"


def plural(n: int | Fraction, word: str) -> str:
    return word if n == 1 else word + "s"


def or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]

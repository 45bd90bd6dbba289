"""The catalog: what each generation costs and what each plan includes.

Prices and plans live in a data file (catalog.toml, beside this package's modules) so staff can
change them without a deploy. The file is validated completely when it is loaded: a mistake
raises CatalogError naming the field ("catalog.toml: features.video.models.veo3.rate: must be a
positive number"), and the app refuses to start rather than charge a wrong price.

`quote(request, plan_key)` is the one pricing function. The server calls it when a generation
is submitted (never trusting a price from the browser); assets/quote.js is its exact twin for
the live cost on the Generate button, fed by `catalog_for_browser()`, and
tests/billing/test_quote_parity.py holds the two to the same answers.

Arithmetic is exact: rates and multipliers are Fractions read from the TOML text (tomllib is
given Decimal for floats), so 40 × 10 × 1.5 is 600 and never 600.0000000001 rounded up to 601.

The package:
- errors.py   CatalogError, UnknownPlan, QuoteError and its kinds
- model.py    the runtime classes (Feature, Model, Resolution, Plan, CreditPack) and Catalog
- pricing.py  request validation, plan limits and quote()
- browser.py  the Generate form's options and the copy quote.js reads
- schema.py, loader.py  the file format and the loader (parse_catalog, load_catalog)
- wording.py  numbers and lists in messages

The process's catalog (get_catalog) and the module-level shortcuts live here, in the package
itself, so that `catalog.get_catalog` is one attribute: replacing it (a test's monkeypatch)
reaches every shortcut.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from workroom_app import settings
from workroom_app.billing.catalog.errors import (
    CatalogError,
    InvalidRequest,
    OutOfRange,
    PlanLimit,
    QuoteError,
    TextTooLong,
    UnknownFeature,
    UnknownModel,
    UnknownPlan,
    UnsupportedResolution,
)
from workroom_app.billing.catalog.loader import load_catalog, parse_catalog
from workroom_app.billing.catalog.model import (
    Catalog,
    CreditPack,
    Feature,
    Model,
    Plan,
    Resolution,
)
from workroom_app.billing.catalog.pricing import GenerationRequest, Quote
from workroom_app.billing.catalog.wording import format_exact, or_list

__all__ = [
    "Catalog",
    "CatalogError",
    "CreditPack",
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
    "choose_feature_message",
    "feature_labels",
    "feature_options",
    "format_exact",
    "get_catalog",
    "load_catalog",
    "max_concurrent",
    "parse_catalog",
    "plan_allows",
    "plan_limit",
    "quote",
    "reload_catalog",
]


@lru_cache(maxsize=4)
def _cached(path: str) -> Catalog:
    return load_catalog(path)


def get_catalog() -> Catalog:
    """The catalog at settings.catalog_path, loaded once per process (reload_catalog() to re-read)."""
    return _cached(str(settings.get_settings().catalog_path))


def reload_catalog() -> Catalog:
    _cached.cache_clear()
    return get_catalog()


def quote(
    request: Mapping[str, Any] | GenerationRequest, plan_key: str, *, catalog: Catalog | None = None
) -> Quote:
    return (catalog or get_catalog()).quote(request, plan_key)


def feature_labels(*, catalog: Catalog | None = None) -> dict[str, str]:
    """Every feature's key and label, in the catalog's order: the one list of features that the
    Generate form, job checks and Usage filters read."""
    return {key: feature.label for key, feature in (catalog or get_catalog()).features.items()}


def choose_feature_message(*, catalog: Catalog | None = None) -> str:
    """What to tell someone who sent no feature, or one the catalog does not have."""
    return f"Choose a feature: {or_list(list(feature_labels(catalog=catalog).values()))}."


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

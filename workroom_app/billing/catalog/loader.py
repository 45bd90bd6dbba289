"""Reading catalog.toml: parse, validate every field (schema.py), then the rules that span
fields, and build the runtime Catalog. A mistake raises CatalogError naming the file and the
field's path."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from workroom_app import settings
from workroom_app.billing.catalog.errors import CatalogError
from workroom_app.billing.catalog.model import Catalog, CreditPack, Feature, Model, Plan, Resolution
from workroom_app.billing.catalog.schema import CatalogSpec, ModelSpec

_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_RESOLUTION_KEY = re.compile(r"[A-Za-z0-9]{1,16}")

# Bounds that keep every product far inside exact integer range on both sides.
_MAX_RATE = 1_000_000
_MAX_MULTIPLIER = 1_000
_MAX_CHARS = 1_000_000


class _Problem(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _pydantic_problem(error: ErrorDetails) -> tuple[str, str]:
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
        spec = CatalogSpec.model_validate(data)
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
        path = settings.get_settings().catalog_path
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


def _build(spec: CatalogSpec, *, source: str, digest: str) -> Catalog:
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
    for lower, higher in pairwise(plans):
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

    packs: list[CreditPack] = []
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
    fkey: str, mkey: str, spec: ModelSpec, ladder: list[Resolution], mpath: str
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
        if spec.max_chars is not None and spec.max_chars > _MAX_CHARS:
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

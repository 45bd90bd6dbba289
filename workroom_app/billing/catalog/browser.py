"""What the browser needs from the catalog: the Generate form's choices for a plan (each with
why it is locked and which plan unlocks it) and the whole catalog for assets/quote.js."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workroom_app.billing.catalog.errors import PlanLimit
from workroom_app.billing.catalog.wording import fmt_int, format_exact, ratio_text

if TYPE_CHECKING:
    from workroom_app.billing.catalog.model import Catalog


def feature_options(catalog: Catalog, feature: str, plan_key: str) -> dict[str, Any]:
    """Every choice the Generate form offers for `feature` on `plan_key`, JSON-able.

    Each model, resolution and duration carries `locked` (the plan does not allow it),
    `reason` (a sentence for the user) and `unlock_plan` / `unlock_plan_name` (the cheapest
    plan that allows it). `default_*` are the first choices the plan allows."""
    plan = catalog.plan(plan_key)
    feat = catalog.feature(feature)
    models = []
    for model in feat.models.values():
        resolutions = []
        for key in model.resolutions:
            resolutions.append(
                {
                    "key": key,
                    "label": feat.resolution_label(key),
                    "multiplier": format_exact(model.multipliers[key]),
                    **_lock_fields(catalog.plan_limit(plan.key, feat.key, resolution=key)),
                }
            )
        durations = [
            {
                "value": d,
                "label": f"{fmt_int(d)} s",
                **_lock_fields(catalog.plan_limit(plan.key, feat.key, duration=d)),
            }
            for d in model.durations
        ]
        counts = [
            {"value": c, "label": fmt_int(c), **_lock_fields(None)}
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


def for_browser(catalog: Catalog) -> dict[str, Any]:
    """Everything quote.js needs, JSON-able. Exact numbers travel as "n/d" strings; data-keyed
    things are lists, so no catalog key can collide with a JavaScript object property."""
    return {
        "schema_version": catalog.schema_version,
        "digest": catalog.digest,
        "default_plan": catalog.default_plan_key,
        "currency": catalog.currency,
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
                        "rate": ratio_text(m.rate),
                        "unit": m.unit,
                        "resolutions": [
                            {"key": k, "multiplier": ratio_text(m.multipliers[k])}
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
            for f in catalog.features.values()
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
            for p in catalog.plans
        ],
    }


def _lock_fields(limit: PlanLimit | None) -> dict[str, Any]:
    return {
        "locked": limit is not None,
        "reason": limit.message if limit else "",
        "unlock_plan": limit.required_plan if limit else None,
        "unlock_plan_name": limit.required_plan_name if limit else None,
    }


def _first_unlocked(options: list[dict[str, Any]], key: str) -> Any:
    return next((o[key] for o in options if not o["locked"]), None)

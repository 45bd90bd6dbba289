"""The catalog (PRODUCT_RULES §3 prices, §4 plans) and the pricing function quote()."""

from __future__ import annotations

import math
import tomllib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tests.support.catalog_files import DEFAULT_FILE, replace_once, write_catalog
from workroom_app import settings as settings_module
from workroom_app.billing import catalog as catalog_module
from workroom_app.billing.catalog import (
    Catalog,
    CatalogError,
    GenerationRequest,
    InvalidRequest,
    OutOfRange,
    PlanLimit,
    QuoteError,
    TextTooLong,
    UnknownFeature,
    UnknownModel,
    UnknownPlan,
    UnsupportedResolution,
    catalog_for_browser,
    feature_options,
    get_catalog,
    load_catalog,
    max_concurrent,
    parse_catalog,
    plan_allows,
    quote,
)


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(DEFAULT_FILE)


def default_data() -> dict:
    return tomllib.loads(DEFAULT_FILE.read_text(), parse_float=Decimal)


# ------------------------------------------------------------------ §3: every default price
# The spec's numbers, written out here independently of catalog.toml.
SPEC_IMAGE_RATES = {"flux_schnell": 1, "flux_pro": 4, "imagen4": 5, "gpt_image": 8}
SPEC_IMAGE_RES = {"1K": Fraction(1), "2K": Fraction(2), "4K": Fraction(4)}
SPEC_VIDEO_RATES = {"seedance_lite": 4, "kling21": 10, "veo3": 40}
SPEC_VIDEO_RES = {
    "480p": Fraction(4, 5),
    "720p": Fraction(1),
    "1080p": Fraction(3, 2),
    "4K": Fraction(3),
}
SPEC_VOICE_RATES = {"standard": 1, "expressive": 3}
SPEC_FACE_RES = {"720p": Fraction(1), "1080p": Fraction(3, 2)}
SPEC_LIP_RATES = {"standard": 5, "pro": 12}


def all_default_requests():
    for model, rate in SPEC_IMAGE_RATES.items():
        for res, mult in SPEC_IMAGE_RES.items():
            for count in range(1, 5):
                yield (
                    {"feature": "image", "model": model, "resolution": res, "count": count},
                    math.ceil(rate * mult * count),
                )
    for model, rate in SPEC_VIDEO_RATES.items():
        for res, mult in SPEC_VIDEO_RES.items():
            if model == "seedance_lite" and res == "4K":
                continue  # Seedance Lite goes up to 1080p
            for duration in (5, 8, 10):
                yield (
                    {"feature": "video", "model": model, "resolution": res, "duration": duration},
                    math.ceil(rate * duration * mult),
                )
    for model, rate in SPEC_VOICE_RATES.items():
        for chars in (1, 2, 99, 100, 101, 199, 200, 250, 999, 1000, 4999, 5000):
            units = max(1, math.ceil(chars / 100))
            yield {"feature": "voiceover", "model": model, "text": "a" * chars}, rate * units
    yield {"feature": "face_swap", "mode": "image"}, 2
    for res, mult in SPEC_FACE_RES.items():
        for seconds in range(1, 31):
            yield (
                {"feature": "face_swap", "mode": "video", "resolution": res, "duration": seconds},
                math.ceil(3 * seconds * mult),
            )
    for model, rate in SPEC_LIP_RATES.items():
        for res, mult in SPEC_FACE_RES.items():
            for seconds in range(1, 61):
                yield (
                    {"feature": "lip_sync", "model": model, "resolution": res, "duration": seconds},
                    math.ceil(rate * seconds * mult),
                )


def test_every_default_price_matches_product_rules(cat):
    checked = 0
    for request, expected in all_default_requests():
        # Pro allows every option; its unlimited Flux Schnell still has a list price.
        q = cat.quote(request, "pro")
        unlimited = (request["feature"], request.get("model")) == ("image", "flux_schnell")
        assert (q.list_cost, q.unlimited) == (expected, unlimited), request
        assert q.cost == (0 if unlimited else expected)
        checked += 1
    assert checked > 400


@pytest.mark.parametrize(
    ("request_", "plan", "cost"),
    [
        ({"feature": "video", "model": "veo3", "duration": 10, "resolution": "1080p"}, "pro", 600),
        (
            {"feature": "video", "model": "seedance_lite", "duration": 5, "resolution": "480p"},
            "free",
            16,
        ),
        (
            {"feature": "video", "model": "seedance_lite", "duration": 10, "resolution": "1080p"},
            "starter",
            60,
        ),
        (
            {"feature": "video", "model": "kling21", "duration": 8, "resolution": "720p"},
            "starter",
            80,
        ),
        ({"feature": "video", "model": "kling21", "duration": 10, "resolution": "4K"}, "pro", 300),
        ({"feature": "video", "model": "veo3", "duration": 5, "resolution": "4K"}, "studio", 600),
        (
            {"feature": "video", "model": "veo3", "duration": 8, "resolution": "480p"},
            "starter",
            256,
        ),
        ({"feature": "voiceover", "model": "expressive", "text": "x" * 250}, "free", 9),
        ({"feature": "voiceover", "model": "standard", "text": "x"}, "free", 1),
        ({"feature": "voiceover", "model": "expressive", "text": "x"}, "free", 3),
        ({"feature": "voiceover", "model": "standard", "text": "x" * 100}, "pro", 1),
        ({"feature": "voiceover", "model": "standard", "text": "x" * 101}, "pro", 2),
        ({"feature": "voiceover", "model": "standard", "text": "x" * 5000}, "pro", 50),
        ({"feature": "voiceover", "model": "expressive", "text": "x" * 5000}, "studio", 150),
        ({"feature": "image", "model": "gpt_image", "resolution": "2K", "count": 4}, "starter", 64),
        ({"feature": "image", "model": "gpt_image", "resolution": "4K", "count": 4}, "pro", 128),
        ({"feature": "image", "model": "flux_schnell", "resolution": "1K", "count": 1}, "free", 1),
        ({"feature": "image", "model": "flux_pro", "resolution": "2K", "count": 3}, "starter", 24),
        ({"feature": "image", "model": "imagen4", "resolution": "4K", "count": 2}, "pro", 40),
        ({"feature": "face_swap", "mode": "image"}, "free", 2),
        (
            {"feature": "face_swap", "mode": "video", "duration": 10, "resolution": "720p"},
            "free",
            30,
        ),
        (
            {"feature": "face_swap", "mode": "video", "duration": 7, "resolution": "1080p"},
            "starter",
            32,
        ),
        (
            {"feature": "face_swap", "mode": "video", "duration": 30, "resolution": "1080p"},
            "pro",
            135,
        ),
        (
            {"feature": "lip_sync", "model": "standard", "duration": 60, "resolution": "720p"},
            "free",
            300,
        ),
        (
            {"feature": "lip_sync", "model": "standard", "duration": 3, "resolution": "1080p"},
            "starter",
            23,
        ),
        (
            {"feature": "lip_sync", "model": "pro", "duration": 10, "resolution": "1080p"},
            "pro",
            180,
        ),
        (
            {"feature": "lip_sync", "model": "pro", "duration": 60, "resolution": "1080p"},
            "studio",
            1080,
        ),
    ],
)
def test_price_examples(cat, request_, plan, cost):
    q = cat.quote(request_, plan)
    assert q.cost == cost
    assert q.unlimited is False
    assert q.label == f"{cost:,} credit" + ("" if cost == 1 else "s")


def test_units_and_breakdown(cat):
    q = cat.quote({"feature": "voiceover", "model": "expressive", "text": "x" * 250}, "free")
    assert q.units == 3
    assert "3 units (250 characters)" in q.breakdown and q.breakdown.endswith("= 9 credits")
    q = cat.quote(
        {"feature": "face_swap", "mode": "video", "duration": 7, "resolution": "1080p"}, "pro"
    )
    assert q.units == 7
    assert (
        q.breakdown
        == "Face swap (video): 3 credits/s × 7 s × 1.5 (1080p) = 31.5, rounded up to 32 credits"
    )
    q = cat.quote({"feature": "image", "model": "gpt_image", "resolution": "2K", "count": 4}, "pro")
    assert q.breakdown == "GPT Image: 8 credits/image × 2 (2K) × 4 images = 64 credits"


def test_arithmetic_is_exact_not_binary_float():
    # 0.1 × 3 × 10 is 3.0000000000000004 in binary floats, which would round up to 4.
    data = default_data()
    data["features"]["image"]["models"]["flux_schnell"]["rate"] = Decimal("0.1")
    data["features"]["image"]["resolutions"]["4K"]["multiplier"] = 3
    data["features"]["image"]["models"]["flux_schnell"]["count"]["max"] = 10
    exact = parse_catalog(data)
    assert 0.1 * 3 * 10 > 3  # the trap this test is about
    # Flux Schnell is unlimited on Pro; drop that so the 4K price is charged.
    for plan in data["plans"].values():
        plan["unlimited"] = []
    exact = parse_catalog(data)
    assert (
        exact.quote(
            {"feature": "image", "model": "flux_schnell", "resolution": "4K", "count": 10}, "pro"
        ).cost
        == 3
    )
    # Fractions written as text stay exact too.
    data["features"]["video"]["models"]["veo3"]["rate"] = "2/3"
    exact = parse_catalog(data)
    assert (
        exact.quote(
            {"feature": "video", "model": "veo3", "resolution": "1080p", "duration": 8}, "pro"
        ).cost
        == 8
    )
    assert (
        exact.quote(
            {"feature": "video", "model": "veo3", "resolution": "480p", "duration": 5}, "pro"
        ).cost
        == 3
    )  # 8/3 -> 3


def test_toml_floats_are_read_exactly(cat):
    assert cat.features["video"].resolution("480p").multiplier == Fraction(4, 5)
    assert cat.features["video"].models["veo3"].multipliers["1080p"] == Fraction(3, 2)
    assert isinstance(cat.features["video"].models["veo3"].rate, Fraction)


# ------------------------------------------------------------------ §4: plans and unlimited


def test_plans_from_product_rules(cat):
    got = [
        (p.key, p.name, p.price_cents, p.monthly_credits, p.max_concurrent, p.rank)
        for p in cat.plans
    ]
    assert got == [
        ("free", "Free", 0, 0, 1, 0),
        ("starter", "Starter", 1000, 800, 2, 1),
        ("pro", "Pro", 3000, 3000, 4, 2),
        ("studio", "Studio", 8000, 9000, 8, 3),
    ]
    assert cat.trial_credits == 50
    assert cat.currency == "usd"
    assert cat.default_plan.key == "free" and not cat.default_plan.paid
    assert [p.key for p in cat.paid_plans] == ["starter", "pro", "studio"]
    assert cat.lowest_paid_plan.key == "starter"
    assert cat.plan("free").max_video_seconds == 5
    assert cat.plan("starter").max_video_seconds is None


@pytest.mark.parametrize(
    ("plan", "slots"), [("free", 1), ("starter", 2), ("pro", 4), ("studio", 8)]
)
def test_max_concurrent(cat, plan, slots):
    assert cat.max_concurrent(plan) == slots
    assert max_concurrent(plan, catalog=cat) == slots


UNLIMITED = {
    "free": set(),
    "starter": set(),
    "pro": {("image", "flux_schnell")},
    "studio": {("image", "flux_schnell"), ("image", "flux_pro"), ("voiceover", "standard")},
}


def _cheapest_valid_request(feature: str, model: str) -> dict:
    req = {"feature": feature, "model": model, "text": "hello", "count": 1}
    m = get_catalog().features[feature].models[model]
    if m.resolutions:
        req["resolution"] = m.resolutions[0]
    if m.durations:
        req["duration"] = m.durations[0]
    return req


@pytest.mark.parametrize("plan", list(UNLIMITED))
def test_unlimited_pairs_per_plan(cat, plan):
    for feature in cat.features.values():
        for model in feature.models.values():
            q = cat.quote(_cheapest_valid_request(feature.key, model.key), plan)
            expected = (feature.key, model.key) in UNLIMITED[plan]
            assert q.unlimited is expected, (plan, feature.key, model.key)
            assert (q.cost == 0) is expected
            assert (q.label == "Unlimited") is expected


def test_unlimited_still_obeys_plan_limits(cat):
    # Flux Schnell is unlimited on Pro, and 4K is allowed there; not so on Free.
    assert cat.quote(
        {"feature": "image", "model": "flux_schnell", "resolution": "4K", "count": 4}, "pro"
    ).unlimited
    with pytest.raises(PlanLimit):
        cat.quote(
            {"feature": "image", "model": "flux_schnell", "resolution": "4K", "count": 4}, "free"
        )


# ------------------------------------------------------------------------------ plan limits


@pytest.mark.parametrize(
    ("request_", "plan", "required", "message"),
    [
        (
            {"feature": "video", "model": "kling21", "resolution": "4K", "duration": 5},
            "free",
            "pro",
            "4K needs the Pro plan or higher",
        ),
        (
            {"feature": "video", "model": "kling21", "resolution": "4K", "duration": 5},
            "starter",
            "pro",
            "4K needs the Pro plan or higher",
        ),
        (
            {"feature": "video", "model": "kling21", "resolution": "1080p", "duration": 5},
            "free",
            "starter",
            "1080p needs the Starter plan or higher",
        ),
        (
            {"feature": "video", "model": "kling21", "resolution": "720p", "duration": 8},
            "free",
            "starter",
            "Video longer than 5 s needs the Starter plan or higher",
        ),
        (
            {"feature": "video", "model": "veo3", "resolution": "720p", "duration": 10},
            "free",
            "starter",
            "Video longer than 5 s needs the Starter plan or higher",
        ),
        (
            {"feature": "video", "model": "veo3", "resolution": "4K", "duration": 10},
            "free",
            "pro",
            "4K and video longer than 5 s need the Pro plan or higher",
        ),
        (
            {"feature": "image", "model": "gpt_image", "resolution": "4K", "count": 1},
            "free",
            "pro",
            "4K needs the Pro plan or higher",
        ),
        (
            {"feature": "image", "model": "gpt_image", "resolution": "4K", "count": 1},
            "starter",
            "pro",
            "4K needs the Pro plan or higher",
        ),
        (
            {"feature": "face_swap", "mode": "video", "resolution": "1080p", "duration": 5},
            "free",
            "starter",
            "1080p needs the Starter plan or higher",
        ),
        (
            {"feature": "lip_sync", "model": "pro", "resolution": "1080p", "duration": 5},
            "free",
            "starter",
            "1080p needs the Starter plan or higher",
        ),
    ],
)
def test_plan_limits(cat, request_, plan, required, message):
    with pytest.raises(PlanLimit) as err:
        cat.quote(request_, plan)
    assert err.value.required_plan == required
    assert err.value.required_plan_name == cat.plan(required).name
    assert str(err.value) == message
    assert err.value.kind == "PlanLimit"
    # ...and the plan it names does allow it.
    cat.quote(request_, required)


@pytest.mark.parametrize(
    ("request_", "plan"),
    [
        ({"feature": "video", "model": "veo3", "resolution": "720p", "duration": 5}, "free"),
        (
            {"feature": "video", "model": "seedance_lite", "resolution": "480p", "duration": 5},
            "free",
        ),
        ({"feature": "image", "model": "gpt_image", "resolution": "2K", "count": 4}, "free"),
        ({"feature": "video", "model": "veo3", "resolution": "1080p", "duration": 10}, "starter"),
        ({"feature": "video", "model": "veo3", "resolution": "4K", "duration": 10}, "pro"),
        ({"feature": "image", "model": "imagen4", "resolution": "4K", "count": 4}, "studio"),
        (
            {"feature": "lip_sync", "model": "standard", "resolution": "720p", "duration": 60},
            "free",
        ),
        ({"feature": "face_swap", "mode": "video", "resolution": "720p", "duration": 30}, "free"),
    ],
)
def test_allowed_at_the_limit(cat, request_, plan):
    assert cat.quote(request_, plan).cost > 0


def test_plan_allows_helper(cat):
    assert plan_allows("free", "video", resolution="720p", duration=5, catalog=cat)
    assert not plan_allows("free", "video", resolution="1080p", catalog=cat)
    assert not plan_allows("free", "video", duration=8, catalog=cat)
    assert plan_allows("starter", "video", resolution="1080p", duration=10, catalog=cat)
    assert not plan_allows("starter", "image", resolution="4K", catalog=cat)
    assert plan_allows("pro", "image", resolution="4K", catalog=cat)
    limit = cat.plan_limit("free", "video", resolution="4K")
    assert limit.required_plan == "pro" and str(limit) == "4K needs the Pro plan or higher"


# ------------------------------------------------------------------------------- rejections

V = {"feature": "video", "model": "veo3", "resolution": "720p", "duration": 5}
IMG = {"feature": "image", "model": "flux_pro", "resolution": "1K", "count": 2}
VO = {"feature": "voiceover", "model": "standard", "text": "Hello there"}
FS = {"feature": "face_swap", "mode": "video", "resolution": "720p", "duration": 5}
LS = {"feature": "lip_sync", "model": "standard", "resolution": "720p", "duration": 5}


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (None, InvalidRequest, "Send the generation settings as a set of fields"),
        ([V], InvalidRequest, "Send the generation settings as a set of fields"),
        ("video", InvalidRequest, "Send the generation settings as a set of fields"),
        ({}, InvalidRequest, "Choose a feature"),
        ({**V, "feature": 3}, InvalidRequest, "Choose a feature"),
        (
            {**V, "feature": "audio"},
            UnknownFeature,
            "Unknown feature. Choose Image, Video, Voiceover, Face swap or Lip sync.",
        ),
        ({**V, "feature": "__proto__"}, UnknownFeature, None),
        ({**V, "feature": "Video"}, UnknownFeature, None),
        ({"feature": "video"}, InvalidRequest, "Choose a model for Video"),
        ({**V, "model": ["veo3"]}, InvalidRequest, "Choose a model for Video"),
        (
            {**V, "model": "sora"},
            UnknownModel,
            "Unknown model for Video. Choose Seedance Lite, Kling 2.1 or Veo 3.",
        ),
        ({**V, "model": "flux_pro"}, UnknownModel, None),  # a model of another feature
        ({"feature": "face_swap"}, InvalidRequest, "Choose a mode for Face swap"),
        (
            {**FS, "mode": "audio"},
            UnknownModel,
            "Unknown mode for Face swap. Choose Image or Video.",
        ),
        ({**V, "resolution": None}, InvalidRequest, "Choose a resolution for Veo 3"),
        (
            {k: v for k, v in V.items() if k != "resolution"},
            InvalidRequest,
            "Choose a resolution for Veo 3",
        ),
        ({**V, "resolution": 720}, InvalidRequest, "Choose a resolution for Veo 3"),
        (
            {**V, "model": "seedance_lite", "resolution": "4K"},
            UnsupportedResolution,
            "Seedance Lite does not offer 4K. Choose 480p, 720p or 1080p.",
        ),
        (
            {**V, "resolution": "8K"},
            UnsupportedResolution,
            "Veo 3 does not offer that resolution. Choose 480p, 720p, 1080p or 4K.",
        ),
        ({**V, "resolution": "4k"}, UnsupportedResolution, None),
        (
            {**IMG, "resolution": "1080p"},
            UnsupportedResolution,
            "Flux Pro does not offer that resolution. Choose 1K, 2K or 4K.",
        ),
        ({**FS, "resolution": "4K"}, UnsupportedResolution, None),
        ({**V, "duration": 7}, OutOfRange, "Duration must be 5 s, 8 s or 10 s"),
        ({**V, "duration": 0}, OutOfRange, None),
        ({**V, "duration": -1}, OutOfRange, None),
        ({**V, "duration": "-1"}, OutOfRange, None),
        ({**V, "duration": 10**30}, OutOfRange, None),
        ({**V, "duration": "9" * 5000}, OutOfRange, None),  # no int() of a huge string
        ({**V, "duration": "8.5"}, InvalidRequest, "Duration must be a whole number of seconds"),
        ({**V, "duration": "1e9"}, InvalidRequest, None),
        ({**V, "duration": " 8"}, InvalidRequest, None),
        ({**V, "duration": "+8"}, InvalidRequest, None),
        ({**V, "duration": "٨"}, InvalidRequest, None),  # an Arabic-Indic 8: digits are ASCII only
        ({**V, "duration": ""}, InvalidRequest, None),
        ({**V, "duration": 8.5}, InvalidRequest, None),
        ({**V, "duration": 5.0}, InvalidRequest, None),
        ({**V, "duration": float("inf")}, InvalidRequest, None),
        ({**V, "duration": True}, InvalidRequest, None),
        ({**V, "duration": None}, InvalidRequest, None),
        ({**V, "duration": [5]}, InvalidRequest, None),
        ({**V, "duration": {"s": 5}}, InvalidRequest, None),
        ({k: v for k, v in V.items() if k != "duration"}, InvalidRequest, None),
        ({**FS, "duration": 31}, OutOfRange, "Duration must be between 1 and 30 seconds"),
        ({**FS, "duration": 0}, OutOfRange, None),
        ({**LS, "duration": 61}, OutOfRange, "Duration must be between 1 and 60 seconds"),
        ({**IMG, "count": 0}, OutOfRange, "Count must be between 1 and 4"),
        ({**IMG, "count": 5}, OutOfRange, None),
        ({**IMG, "count": "5"}, OutOfRange, None),
        ({**IMG, "count": True}, InvalidRequest, "Count must be a whole number"),
        ({**IMG, "count": 2.0}, InvalidRequest, None),
        ({**IMG, "count": "two"}, InvalidRequest, None),
        ({k: v for k, v in IMG.items() if k != "count"}, InvalidRequest, None),
        ({**VO, "text": ""}, InvalidRequest, "Enter the text for the voiceover"),
        ({**VO, "text": " \n\t "}, InvalidRequest, None),
        ({**VO, "text": None}, InvalidRequest, None),
        ({**VO, "text": 42}, InvalidRequest, None),
        ({k: v for k, v in VO.items() if k != "text"}, InvalidRequest, None),
        ({**VO, "text": "x" * 5012}, TextTooLong, "Text is 5,012 characters; the limit is 5,000"),
        ({**VO, "text": "x" * 5001}, TextTooLong, "Text is 5,001 characters; the limit is 5,000"),
    ],
)
def test_rejections(cat, request_, error, message):
    for plan in ("free", "studio"):
        with pytest.raises(error) as err:
            cat.quote(request_, plan)
        assert type(err.value) is error
        assert isinstance(err.value, QuoteError)
        # The exact words where the case names them; a message in any case.
        assert str(err.value) == message if message is not None else str(err.value)


def test_text_too_long_carries_the_numbers(cat):
    with pytest.raises(TextTooLong) as err:
        cat.quote({**VO, "text": "x" * 5012}, "free")
    assert (err.value.length, err.value.limit) == (5012, 5000)


def test_errors_name_their_field(cat):
    cases = [
        ({**V, "duration": 7}, "duration"),
        ({**IMG, "count": 9}, "count"),
        ({**V, "resolution": "8K"}, "resolution"),
        ({**V, "model": "x"}, "model"),
        ({**V, "feature": "x"}, "feature"),
        ({**VO, "text": ""}, "text"),
        ({**V, "resolution": "4K"}, "resolution"),
    ]
    for request_, field in cases:
        with pytest.raises(QuoteError) as err:
            cat.quote(request_, "free")
        assert err.value.field == field, request_


def test_unknown_plan_is_a_bug_not_a_user_error(cat):
    with pytest.raises(UnknownPlan):
        cat.quote(V, "platinum")
    with pytest.raises(UnknownPlan):
        cat.plan(["free"])
    with pytest.raises(CatalogError):
        cat.max_concurrent("platinum")


def test_numbers_sent_as_text_are_read(cat):
    assert cat.quote({**V, "duration": "8"}, "pro").cost == 320
    assert cat.quote({**IMG, "count": "3"}, "free").cost == 12
    assert cat.quote({**V, "duration": "08"}, "pro").cost == 320


def test_fields_a_model_does_not_use_are_ignored(cat):
    q = cat.quote({**IMG, "duration": "banana", "text": 5, "prompt": "a cat"}, "free")
    assert q.cost == 8
    assert q.request == GenerationRequest(
        feature="image", model="flux_pro", resolution="1K", count=2
    )
    assert (
        cat.quote(
            {"feature": "face_swap", "mode": "image", "resolution": "8K", "duration": -4}, "free"
        ).cost
        == 2
    )


def test_face_swap_accepts_model_as_well_as_mode(cat):
    assert (
        cat.quote(
            {"feature": "face_swap", "model": "video", "resolution": "720p", "duration": 4}, "free"
        ).cost
        == 12
    )
    # mode wins when both are given
    assert cat.quote({"feature": "face_swap", "mode": "image", "model": "video"}, "free").cost == 2


def test_characters_are_code_points(cat):
    # An emoji is one character (as the text box counts it), not two UTF-16 units.
    assert cat.quote({**VO, "text": "😀" * 100}, "free").units == 1
    assert cat.quote({**VO, "text": "😀" * 101}, "free").units == 2
    assert cat.quote({**VO, "text": "😀" * 5000}, "free").cost == 50


def test_generation_request_round_trip(cat):
    q = cat.quote(
        {"feature": "video", "model": "veo3", "resolution": "1080p", "duration": "10", "x": 1},
        "pro",
    )
    assert q.request.as_params() == {
        "feature": "video",
        "model": "veo3",
        "resolution": "1080p",
        "duration": 10,
        "count": 1,
    }
    again = cat.quote(q.request, "pro")
    assert again.cost == q.cost == 600
    assert cat.quote(q.request.as_params(), "pro").cost == 600
    vo = cat.quote(VO, "free").request
    assert vo.text == "Hello there" and vo.characters == 11


def test_module_level_quote_uses_the_settings_catalog(monkeypatch, tmp_path):
    text = DEFAULT_FILE.read_text().replace("rate = 40\n", "rate = 41\n")
    custom = tmp_path / "catalog.toml"
    custom.write_text(text)
    monkeypatch.setenv("WORKROOM_CATALOG_PATH", str(custom))
    settings_module.get_settings.cache_clear()
    try:
        assert quote(V, "free").cost == 205
        assert get_catalog() is get_catalog()  # cached
        assert catalog_module.reload_catalog().source == "catalog.toml"
    finally:
        monkeypatch.delenv("WORKROOM_CATALOG_PATH")
        settings_module.get_settings.cache_clear()
    assert quote(V, "free").cost == 200


# ------------------------------------------------------------------------------ UI helpers


def test_feature_options_locks_what_the_plan_does_not_allow(cat):
    opts = feature_options("video", "free", catalog=cat)
    assert opts["label"] == "Video" and opts["selector"] == "model"
    assert [m["key"] for m in opts["models"]] == ["seedance_lite", "kling21", "veo3"]
    veo = opts["models"][2]
    assert veo["label"] == "Veo 3" and not veo["locked"]
    res = {r["key"]: r for r in veo["resolutions"]}
    assert list(res) == ["480p", "720p", "1080p", "4K"]
    assert not res["720p"]["locked"]
    assert res["1080p"]["locked"] and res["1080p"]["unlock_plan"] == "starter"
    assert res["1080p"]["reason"] == "1080p needs the Starter plan or higher"
    assert res["4K"]["unlock_plan"] == "pro" and res["4K"]["unlock_plan_name"] == "Pro"
    durs = {d["value"]: d for d in veo["durations"]}
    assert list(durs) == [5, 8, 10] and durs[5]["label"] == "5 s"
    assert not durs[5]["locked"] and durs[8]["locked"] and durs[10]["unlock_plan"] == "starter"
    assert veo["default_resolution"] == "480p" and veo["default_duration"] == 5
    seedance = opts["models"][0]
    assert [r["key"] for r in seedance["resolutions"]] == ["480p", "720p", "1080p"]

    pro = feature_options("video", "pro", catalog=cat)
    assert not any(r["locked"] for m in pro["models"] for r in m["resolutions"] + m["durations"])


def test_feature_options_for_other_features(cat):
    image = cat.feature_options("image", "pro")
    schnell = image["models"][0]
    assert schnell["unlimited"] and schnell["rate_label"] == "1 credit/image"
    assert [c["value"] for c in schnell["counts"]] == [1, 2, 3, 4]
    assert not image["models"][1]["unlimited"]
    vo = cat.feature_options("voiceover", "studio")
    assert vo["models"][0]["max_chars"] == 5000 and vo["models"][0]["chars_per_unit"] == 100
    assert vo["models"][0]["unlimited"] and not vo["models"][1]["unlimited"]
    fs = cat.feature_options("face_swap", "free")
    assert fs["selector"] == "mode" and fs["selector_label"] == "Mode"
    assert [m["key"] for m in fs["models"]] == ["image", "video"]
    assert fs["models"][0]["resolutions"] == [] and fs["models"][0]["durations"] == []
    assert fs["models"][1]["duration_min"] == 1 and fs["models"][1]["duration_max"] == 30
    assert len(fs["models"][1]["durations"]) == 30
    ls = cat.feature_options("lip_sync", "free")
    assert [m["label"] for m in ls["models"]] == ["Standard", "Pro"]
    assert ls["models"][1]["durations"][-1]["value"] == 60
    with pytest.raises(UnknownFeature):
        cat.feature_options("audio", "free")
    with pytest.raises(UnknownPlan):
        cat.feature_options("image", "gold")


def test_model_locked_when_no_option_is_allowed():
    data = default_data()
    data["features"]["video"]["models"]["veo3"]["resolutions"] = ["1080p", "4K"]
    c = parse_catalog(data)
    veo = c.feature_options("video", "free")["models"][2]
    assert veo["locked"] and veo["unlock_plan"] == "starter"
    assert veo["reason"] == "1080p needs the Starter plan or higher"
    assert veo["default_resolution"] is None
    assert not c.feature_options("video", "starter")["models"][2]["locked"]


def test_catalog_for_browser_is_json_and_exact(cat):
    import json

    data = json.loads(json.dumps(catalog_for_browser(cat)))
    assert data["default_plan"] == "free" and data["digest"] == cat.digest
    video = next(f for f in data["features"] if f["key"] == "video")
    veo = next(m for m in video["models"] if m["key"] == "veo3")
    assert veo["rate"] == "40"
    assert {r["key"]: r["multiplier"] for r in veo["resolutions"]} == {
        "480p": "4/5",
        "720p": "1",
        "1080p": "3/2",
        "4K": "3",
    }
    assert veo["duration_choices"] == [5, 8, 10]
    free = data["plans"][0]
    assert (
        free["key"] == "free"
        and ["video", "720p"] in free["max_resolution"]
        and ["video", 5] in free["max_duration"]
    )
    assert data["plans"][3]["unlimited"] == [
        ["image", "flux_schnell"],
        ["image", "flux_pro"],
        ["voiceover", "standard"],
    ]


def test_labels_for_everything_the_ui_shows(cat):
    assert [f.label for f in cat.features.values()] == [
        "Image",
        "Video",
        "Voiceover",
        "Face swap",
        "Lip sync",
    ]
    labels = {(f.key, m.key): m.label for f in cat.features.values() for m in f.models.values()}
    assert (
        labels[("image", "gpt_image")] == "GPT Image"
        and labels[("video", "kling21")] == "Kling 2.1"
    )
    assert all(p.highlights for p in cat.plans)


# --------------------------------------------------------------------- broken catalog files


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = -40',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = 0',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = "forty"',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = true',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = nan',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = inf',
            "catalog.toml: features.video.models.veo3.rate: must be a positive number",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = 0.0000001',
            "catalog.toml: features.video.models.veo3.rate: must have at most 6 decimal places",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrate = 2000000',
            "catalog.toml: features.video.models.veo3.rate: must be at most 1,000,000",
        ),
        (
            'label = "Veo 3"\nrate = 40',
            'label = "Veo 3"\nrat = 40',
            "catalog.toml: features.video.models.veo3.rat: is not a known field (check the spelling) (and 1 more problems)",
        ),
        (
            'label = "Veo 3"\nrate = 40\n',
            'label = "Veo 3"\n',
            "catalog.toml: features.video.models.veo3.rate: is required",
        ),
        (
            'label = "Veo 3"\nrate = 40\nunit = "second"',
            'label = "Veo 3"\nrate = 40\nunit = "minute"',
            "catalog.toml: features.video.models.veo3.unit: must be 'image', 'second' or 'characters'",
        ),
        (
            'label = "Veo 3"',
            'label = ""',
            "catalog.toml: features.video.models.veo3.label: must not be empty",
        ),
        (
            '"480p" = { label = "480p", multiplier = 0.8 }',
            '"480p" = { label = "480p", multiplier = -0.8 }',
            "catalog.toml: features.video.resolutions.480p.multiplier: must be a positive number",
        ),
        (
            'resolutions = ["480p", "720p", "1080p"]',
            'resolutions = ["480p", "720p", "8K"]',
            "catalog.toml: features.video.models.seedance_lite.resolutions[2]: '8K' is not a resolution of features.video (480p, 720p, 1080p, 4K)",
        ),
        (
            'resolutions = ["480p", "720p", "1080p"]',
            'resolutions = ["480p", 720]',
            "catalog.toml: features.video.models.seedance_lite.resolutions[1]: must be text",
        ),
        (
            'label = "Veo 3"\nrate = 40\nunit = "second"\nduration = { choices = [5, 8, 10] }',
            'label = "Veo 3"\nrate = 40\nunit = "second"\nduration = { choices = [10, 5] }',
            "catalog.toml: features.video.models.veo3.duration: choices must go from shortest to longest, without repeats",
        ),
        (
            'label = "Veo 3"\nrate = 40\nunit = "second"\nduration = { choices = [5, 8, 10] }',
            'label = "Veo 3"\nrate = 40\nunit = "second"\nduration = { choices = [5, 8.5] }',
            "catalog.toml: features.video.models.veo3.duration.choices[1]: must be a whole number",
        ),
        (
            'label = "Veo 3"\nrate = 40\nunit = "second"\nduration = { choices = [5, 8, 10] }',
            'label = "Veo 3"\nrate = 40\nunit = "second"',
            'catalog.toml: features.video.models.veo3.duration: is required when unit is "second"',
        ),
        (
            "duration = { min = 1, max = 30 }",
            "duration = { min = 30, max = 1 }",
            "catalog.toml: features.face_swap.models.video.duration: max must be at least min",
        ),
        (
            "duration = { min = 1, max = 30 }",
            "duration = { min = 0, max = 30 }",
            "catalog.toml: features.face_swap.models.video.duration.min: must be at least 1",
        ),
        (
            'label = "GPT Image"\nrate = 8\nunit = "image"\ncount = { min = 1, max = 4 }',
            'label = "GPT Image"\nrate = 8\nunit = "image"\ncount = { min = 4, max = 1 }',
            "catalog.toml: features.image.models.gpt_image.count: max must be at least min",
        ),
        (
            "chars_per_unit = 100\nmax_chars = 5000",
            "max_chars = 5000",
            'catalog.toml: features.voiceover.models.standard.chars_per_unit: is required when unit is "characters"',
        ),
        (
            'label = "Flux Pro"\nrate = 4\nunit = "image"',
            'label = "Flux Pro"\nrate = 4\nunit = "image"\nmax_chars = 10',
            'catalog.toml: features.image.models.flux_pro.max_chars: is only for models whose unit is "characters"',
        ),
        (
            "price_cents = 1000",
            'price_cents = "1000"',
            "catalog.toml: plans.starter.price_cents: must be a whole number",
        ),
        (
            "price_cents = 1000",
            "price_cents = 10.5",
            "catalog.toml: plans.starter.price_cents: must be a whole number",
        ),
        (
            "price_cents = 1000",
            "price_cents = 5000",
            "catalog.toml: plans.pro.price_cents: must be more than plans.starter.price_cents (plans are ranked by price)",
        ),
        (
            "max_concurrent = 2",
            "max_concurrent = 0",
            "catalog.toml: plans.starter.max_concurrent: must be at least 1",
        ),
        (
            "max_concurrent = 4",
            "max_concurrent = 1",
            "catalog.toml: plans.pro.max_concurrent: must be at least plans.starter.max_concurrent",
        ),
        (
            "rank = 2",
            "rank = 1",
            "catalog.toml: plans.pro.rank: is the same as plans.starter.rank; every plan needs its own rank",
        ),
        (
            'max_resolution = { image = "2K", video = "1080p" }',
            'max_resolution = { image = "2K", video = "8K" }',
            "catalog.toml: plans.starter.max_resolution.video: '8K' is not a resolution of features.video (480p, 720p, 1080p, 4K)",
        ),
        (
            'max_resolution = { image = "2K", video = "1080p" }',
            'max_resolution = { image = "2K", audio = "1080p" }',
            "catalog.toml: plans.starter.max_resolution.audio: 'audio' is not a feature of the catalog",
        ),
        (
            'max_resolution = { image = "2K", video = "1080p" }',
            'max_resolution = { image = "2K", video = "480p" }',
            "catalog.toml: plans.starter.max_resolution.video: must be at least what plans.free allows",
        ),
        (
            "max_duration = { video = 5 }",
            "max_duration = { video = 0 }",
            "catalog.toml: plans.free.max_duration.video: must be at least 1",
        ),
        (
            "max_duration = { video = 5 }",
            "max_duration = { image = 5 }",
            "catalog.toml: plans.free.max_duration.image: features.image has no model with a duration",
        ),
        (
            'unlimited = [{ feature = "image", model = "flux_schnell" }]',
            'unlimited = [{ feature = "image", model = "flux_turbo" }]',
            "catalog.toml: plans.pro.unlimited[0].model: 'flux_turbo' is not a model of features.image",
        ),
        (
            'unlimited = [{ feature = "image", model = "flux_schnell" }]',
            'unlimited = [{ feature = "img", model = "flux_schnell" }]',
            "catalog.toml: plans.pro.unlimited[0].feature: 'img' is not a feature of the catalog",
        ),
        (
            'unlimited = [{ feature = "image", model = "flux_schnell" }]',
            'unlimited = [{ feature = "image" }]',
            "catalog.toml: plans.pro.unlimited[0].model: is required",
        ),
        (
            'default_plan = "free"',
            'default_plan = "gratis"',
            "catalog.toml: default_plan: 'gratis' is not a plan of the catalog",
        ),
        ("schema_version = 1", "schema_version = 2", "catalog.toml: schema_version: must be 1"),
        (
            "trial_credits = 50",
            "trial_credits = -50",
            "catalog.toml: plans.free.trial_credits: must be at least 0",
        ),
        ('name = "Pro"', "name = 3", "catalog.toml: plans.pro.name: must be text"),
        (
            'currency = "usd"',
            'currency = "US$"',
            'catalog.toml: currency: must be a three-letter lowercase currency code, like "usd"',
        ),
    ],
)
def test_broken_catalog_names_the_field(tmp_path, old, new, message):
    path = write_catalog(tmp_path, replace_once(DEFAULT_FILE.read_text(), old, new))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert str(err.value) == message


def test_broken_toml_syntax(tmp_path):
    path = write_catalog(tmp_path, DEFAULT_FILE.read_text() + "\n[plans.pro\n")
    with pytest.raises(CatalogError, match=r"^catalog\.toml: not valid TOML: .*line"):
        load_catalog(path)


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the catalog file"):
        load_catalog(tmp_path / "nope.toml")


def test_structural_mistakes_name_the_field():
    cases = [
        (lambda d: d.pop("plans"), "catalog.toml: plans: is required"),
        (
            lambda d: d["features"].__setitem__("Video", d["features"].pop("video")),
            "catalog.toml: features.Video: a feature key must be lowercase letters, digits and _ (starting with a letter)",
        ),
        (
            lambda d: d["plans"].__setitem__("pro-plan", d["plans"].pop("pro")),
            "catalog.toml: plans.pro-plan: a plan key must be lowercase letters, digits and _ (starting with a letter)",
        ),
        (
            lambda d: d["features"]["video"]["models"].__setitem__(
                "Veo 3", d["features"]["video"]["models"].pop("veo3")
            ),
            "catalog.toml: features.video.models.Veo 3: a model key must be lowercase letters, digits and _ (starting with a letter)",
        ),
        (
            lambda d: d["plans"]["free"].__setitem__("price_cents", 1),
            "catalog.toml: default_plan: must be a plan with price_cents = 0",
        ),
        (
            lambda d: d.__setitem__("plans", {}),
            "catalog.toml: plans: must define at least one plan",
        ),
        (
            lambda d: d["features"]["video"].__setitem__("models", {}),
            "catalog.toml: features.video.models: must define at least one model",
        ),
        (
            lambda d: d["features"]["video"].__setitem__("models", []),
            "catalog.toml: features.video.models: must be a table",
        ),
        (
            lambda d: d["plans"]["starter"].__setitem__("unlimited", "flux"),
            "catalog.toml: plans.starter.unlimited: must be a list",
        ),
        (
            lambda d: d["features"]["video"]["models"]["veo3"].__setitem__(
                "multipliers", {"8K": 2}
            ),
            "catalog.toml: features.video.models.veo3.multipliers.8K: is not a resolution this model offers",
        ),
        (
            lambda d: d["features"]["video"]["models"]["veo3"].__setitem__(
                "duration", {"choices": [5], "min": 1}
            ),
            "catalog.toml: features.video.models.veo3.duration: give either choices or min and max, not both",
        ),
        (
            lambda d: d["plans"]["starter"].__setitem__("price_cents", 0),
            "catalog.toml: plans.starter.price_cents: must be more than plans.free.price_cents (plans are ranked by price)",
        ),
        (
            lambda d: d["plans"]["pro"]["unlimited"].append(
                {"feature": "image", "model": "flux_schnell"}
            ),
            "catalog.toml: plans.pro.unlimited[1]: is listed twice",
        ),
        (
            lambda d: d["plans"]["studio"].__setitem__("max_duration", {"video": 3}),
            "catalog.toml: plans.studio.max_duration.video: must be at least what plans.pro allows",
        ),
    ]
    for mutate, message in cases:
        data = default_data()
        mutate(data)
        with pytest.raises(CatalogError) as err:
            parse_catalog(data)
        assert str(err.value) == message


def test_several_problems_are_counted():
    data = default_data()
    data["features"]["video"]["models"]["veo3"]["rate"] = -1
    data["features"]["video"]["models"]["kling21"]["rate"] = -1
    with pytest.raises(
        CatalogError, match=r"rate: must be a positive number \(and 1 more problems\)$"
    ):
        parse_catalog(data)


def test_model_override_multiplier():
    data = default_data()
    data["features"]["video"]["models"]["veo3"]["multipliers"] = {"4K": Decimal("2.5")}
    c = parse_catalog(data)
    assert c.quote({**V, "resolution": "4K", "duration": 10}, "pro").cost == 1000
    assert c.quote({**V, "model": "kling21", "resolution": "4K", "duration": 10}, "pro").cost == 300


def test_default_file_is_the_settings_default():
    from workroom_app.settings import Settings

    assert Path(Settings().catalog_path) == DEFAULT_FILE
    c = load_catalog(DEFAULT_FILE)
    assert len(c.digest) == 64 and c.source == "catalog.toml"

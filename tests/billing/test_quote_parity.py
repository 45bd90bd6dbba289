"""assets/quote.js (the live cost on the Generate button) gives exactly the answers of
catalog.quote() (what the server charges): same cost, same Unlimited, same refusal with the
same message, for thousands of random requests, valid and not, on every plan.

One node process reads the catalog and then one JSON request per line, and answers one JSON
line each. Python prices the very same decoded JSON, so both sides see identical input.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from workroom_app.billing import catalog as catalog_module
from workroom_app.billing.catalog import (
    Catalog,
    QuoteError,
    UnknownPlan,
    load_catalog,
    parse_catalog,
)

REPO = Path(__file__).resolve().parents[2]
QUOTE_JS = REPO / "assets" / "quote.js"
DEFAULT_FILE = Path(catalog_module.__file__).with_name("catalog.toml")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: cannot run assets/quote.js"
)

RUNNER = r"""
const api = require(process.argv[1]);
const lines = require("fs").readFileSync(0, "utf8").split("\n");
const catalog = JSON.parse(lines[0]);
const out = [];
for (let i = 1; i < lines.length; i++) {
  if (!lines[i]) continue;
  const item = JSON.parse(lines[i]);
  out.push(JSON.stringify(api.quote(catalog, item.plan, item.request)));
}
process.stdout.write(out.join("\n") + "\n");
"""


def run_node(catalog: Catalog, items: list[dict]) -> tuple[list[dict], list[str]]:
    lines = [json.dumps(catalog.for_browser())] + [json.dumps(item) for item in items]
    proc = subprocess.run(
        [NODE, "-e", RUNNER, str(QUOTE_JS)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == len(items)
    return answers, lines[1:]


def python_answer(catalog: Catalog, plan, request) -> dict:
    try:
        q = catalog.quote(request, plan)
    except UnknownPlan:
        return {"ok": False, "kind": "UnknownPlan"}
    except QuoteError as err:
        return {
            "ok": False,
            "cost": None,
            "unlimited": False,
            "units": None,
            "label": None,
            "error": str(err),
            "kind": err.kind,
            "required_plan": getattr(err, "required_plan", None),
            "required_plan_name": getattr(err, "required_plan_name", None),
        }
    return {
        "ok": True,
        "cost": q.cost,
        "unlimited": q.unlimited,
        "units": q.units,
        "label": q.label,  # the Generate button's text after "Generate · "
        "error": None,
        "kind": None,
        "required_plan": None,
        "required_plan_name": None,
    }


# ------------------------------------------------------------------ random requests


class RequestMaker:
    """Mostly near-valid requests (so every check is reached), with one or two fields spoiled."""

    def __init__(self, catalog: Catalog, rng: random.Random):
        self.cat = catalog
        self.rng = rng
        self.all_models = sorted({m for f in catalog.features.values() for m in f.models})
        self.all_res = sorted({r.key for f in catalog.features.values() for r in f.resolutions})

    def whole_number(self, good: list[int]):
        r = self.rng
        pick = r.random()
        if pick < 0.55:
            return r.choice(good)
        if pick < 0.65:
            return str(r.choice(good))
        return r.choice(
            [
                0,
                -1,
                "-1",
                "0",
                7,
                11,
                31,
                61,
                99,
                10**6,
                10**20,
                "9" * 20,
                "9" * 16,
                "9" * 15,
                "-" + "9" * 18,
                "8.5",
                "1e9",
                " 8",
                "+8",
                "",
                "٨",
                "08",
                "five",
                8.5,
                0.5,
                -2.5,
                True,
                False,
                None,
                [8],
                {"v": 8},
                r.randint(-50, 120),
                str(r.randint(-50, 120)),
            ]
        )

    def text(self, max_chars: int):
        r = self.rng
        pick = r.random()
        if pick < 0.08:
            return r.choice([None, 42, ["a"], True, {"t": "x"}])
        if pick < 0.16:
            return r.choice(
                ["", " ", " \n\t\r\f\v ", "\u00a0", "\u3000"]
            )  # blank, and two that are not
        length = r.choice(
            [
                1,
                2,
                99,
                100,
                101,
                199,
                200,
                201,
                max_chars - 1,
                max_chars,
                max_chars + 1,
                max_chars + 12,
                r.randint(1, max_chars + 50),
            ]
        )
        alphabet = r.choice(["x", "ab c", "é😀", "\ud800a", "日本語 ", " \t"])
        body = (alphabet * (length // len(alphabet) + 1))[:length]
        return body

    def request(self):
        r = self.rng
        if r.random() < 0.02:
            return r.choice([None, [], ["video"], "video", 5, True])
        feature = r.choice(list(self.cat.features.values()))
        model = r.choice(list(feature.models.values()))
        req: dict = {"feature": feature.key}
        selector = feature.selector
        if selector != "model" and r.random() < 0.3:
            selector = "model"  # the alias
        req[selector] = model.key
        if model.resolutions or r.random() < 0.2:
            req["resolution"] = r.choice(model.resolutions or self.all_res)
        if model.has_duration or r.random() < 0.2:
            req["duration"] = self.whole_number(list(model.durations) or [5])
        if model.has_count or r.random() < 0.2:
            req["count"] = self.whole_number(list(range(model.count_min, model.count_max + 1)))
        if model.has_text or r.random() < 0.1:
            req["text"] = self.text(model.max_chars or 100)
        # Spoil the identity fields now and then.
        pick = r.random()
        if pick < 0.04:
            req["feature"] = r.choice(
                ["audio", "", "Video", "constructor", "__proto__", "toString", 3, None, ["image"]]
            )
        elif pick < 0.06:
            del req["feature"]
        elif pick < 0.11:
            req[selector] = r.choice(
                self.all_models + ["sora", "", "hasOwnProperty", "__proto__", 7, None, {"k": 1}]
            )
        elif pick < 0.13:
            req.pop(selector, None)
        elif pick < 0.20:
            req["resolution"] = r.choice(
                self.all_res + ["8K", "4k", "1080", "constructor", 1080, None, ""]
            )
        elif pick < 0.23:
            req.pop("resolution", None)
        if r.random() < 0.05:
            req["prompt"] = "a cat"  # fields nobody prices are ignored
        return req

    def plan(self):
        if self.rng.random() < 0.01:
            return self.rng.choice(["platinum", "", None, 3])
        return self.rng.choice([p.key for p in self.cat.plans])


def tricky_catalog() -> Catalog:
    """The default catalog with rates and multipliers chosen to trip float arithmetic."""
    data = tomllib.loads(DEFAULT_FILE.read_text(), parse_float=Decimal)
    f = data["features"]
    f["image"]["models"]["flux_schnell"]["rate"] = Decimal("0.1")
    f["image"]["models"]["flux_pro"]["rate"] = "2/3"
    f["image"]["models"]["imagen4"]["rate"] = Decimal("1.15")
    f["image"]["models"]["gpt_image"]["count"] = {"min": 1, "max": 30}
    f["image"]["resolutions"]["4K"]["multiplier"] = 3
    f["video"]["resolutions"]["480p"]["multiplier"] = Decimal("0.7")
    f["video"]["models"]["veo3"]["rate"] = Decimal("0.333333")
    f["video"]["models"]["kling21"]["multipliers"] = {"1080p": "7/3"}
    f["voiceover"]["models"]["expressive"]["chars_per_unit"] = 7
    f["voiceover"]["models"]["expressive"]["min_units"] = 3
    f["voiceover"]["models"]["standard"]["rate"] = Decimal("0.01")
    f["lip_sync"]["models"]["pro"]["rate"] = Decimal("12.5")
    f["face_swap"]["models"]["video"]["duration"] = {"min": 2, "max": 45}
    for plan in data["plans"].values():
        plan["unlimited"] = [u for u in plan["unlimited"] if u["model"] != "flux_schnell"]
    # Duration limits on ranges (not only on choices), and a lower image cap.
    free = data["plans"]["free"]
    free["max_duration"] = {"video": 5, "face_swap": 10, "lip_sync": 20}
    free["max_resolution"]["image"] = "1K"
    data["plans"]["starter"]["max_duration"] = {"lip_sync": 40}
    return parse_catalog(data, source="tricky.toml")


@pytest.mark.parametrize(
    ("name", "seed", "n"),
    [("default", 20261124, 4000), ("tricky", 7, 3000)],
)
def test_quote_js_matches_python(name, seed, n):
    catalog = load_catalog(DEFAULT_FILE) if name == "default" else tricky_catalog()
    maker = RequestMaker(catalog, random.Random(seed))
    items = [{"plan": maker.plan(), "request": maker.request()} for _ in range(n)]
    # Every plan sees the same list too, so each rule is tried on each plan.
    for plan in catalog.plans:
        for item in items[:300]:
            items.append({"plan": plan.key, "request": item["request"]})
    js_answers, lines = run_node(catalog, items)

    kinds = Counter()
    for line, js in zip(lines, js_answers, strict=True):
        item = json.loads(line)  # exactly what node read
        py = python_answer(catalog, item["plan"], item["request"])
        kinds[py["kind"] or ("unlimited" if py["unlimited"] else "priced")] += 1
        if py["kind"] == "UnknownPlan":
            assert js["kind"] == "UnknownPlan", line
            continue
        assert js == py, f"\nrequest: {line[:500]}\npython:  {py}\nnode:    {js}"

    # The generator must reach every outcome, or the comparison proves little.
    for outcome in (
        "priced",
        "unlimited",
        "InvalidRequest",
        "UnknownFeature",
        "UnknownModel",
        "UnsupportedResolution",
        "OutOfRange",
        "TextTooLong",
        "PlanLimit",
        "UnknownPlan",
    ):
        if outcome == "unlimited" and not any(p.unlimited for p in catalog.plans):
            continue
        assert kinds[outcome] >= 10, (outcome, kinds)
    assert kinds["priced"] >= len(items) // 4, kinds


def test_every_valid_option_on_every_plan():
    """Exhaustive over the default catalog's valid choices (every model, resolution, duration,
    count and a spread of text lengths), on every plan."""
    catalog = load_catalog(DEFAULT_FILE)
    items = []
    for feature in catalog.features.values():
        for model in feature.models.values():
            for res in model.resolutions or (None,):
                for duration in model.durations or (None,):
                    for count in range(model.count_min, model.count_max + 1):
                        for chars in (
                            (1, 50, 100, 101, 250, 4999, 5000) if model.has_text else (None,)
                        ):
                            req = {
                                "feature": feature.key,
                                feature.selector: model.key,
                                "count": count,
                            }
                            if res is not None:
                                req["resolution"] = res
                            if duration is not None:
                                req["duration"] = duration
                            if chars is not None:
                                req["text"] = "y" * chars
                            for plan in catalog.plans:
                                items.append({"plan": plan.key, "request": req})
    assert len(items) > 1500
    js_answers, lines = run_node(catalog, items)
    for line, js in zip(lines, js_answers, strict=True):
        item = json.loads(line)
        assert js == python_answer(catalog, item["plan"], item["request"]), line[:300]


def test_quote_js_exposes_the_browser_global():
    script = (
        "const vm = require('vm'); const fs = require('fs');"
        "const ctx = {window: {}}; vm.createContext(ctx);"
        f"vm.runInContext(fs.readFileSync({json.dumps(str(QUOTE_JS))}, 'utf8'), ctx);"
        "const cat = JSON.parse(fs.readFileSync(0, 'utf8'));"
        "const r = ctx.window.WorkroomQuote.quote(cat, 'pro', {feature: 'video', model: 'veo3', resolution: '1080p', duration: 10});"
        "process.stdout.write(JSON.stringify(r));"
    )
    catalog = load_catalog(DEFAULT_FILE)
    proc = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps(catalog.for_browser()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cost"] == 600

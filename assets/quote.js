/*
 * Workroom live cost: the browser twin of workroom_app/billing/catalog/pricing.py `quote()`.
 *
 * The Generate button shows its cost within a frame, so the price is computed here from the
 * same catalog the server charges from (catalog_for_browser()). The server still prices every
 * submission again and never takes this number; tests/test_quote_parity.py runs thousands of
 * requests through both and requires identical answers, checks and messages included.
 *
 * Arithmetic is exact: rates and multipliers arrive as "n/d" strings and are multiplied as
 * BigInt numerators and denominators, then ceil-divided once, so 40 × 10 × 1.5 is 600, never
 * 600.0000000001 rounded up to 601.
 *
 *   WorkroomQuote.quote(catalog, planKey, request) ->
 *     {ok: true,  cost, unlimited, units, label: "45 credits" | "Unlimited",
 *      error: null, kind: null, required_plan: null, required_plan_name: null}
 *     {ok: false, cost: null, unlimited: false, units: null, label: null, error: "<message for the user>",
 *      kind: "InvalidRequest" | "UnknownFeature" | "UnknownModel" | "UnsupportedResolution" |
 *            "OutOfRange" | "TextTooLong" | "PlanLimit" | "UnknownPlan",
 *      required_plan: "<plan key>" | null, required_plan_name: "<plan name>" | null}
 *
 * No dependencies; works in browsers (window.WorkroomQuote) and under node (module.exports).
 */
(function (root) {
  "use strict";

  // Integers sent as text are read only when they are plain digits; longer than this many
  // digits is out of any range (the same rule as catalog/pricing.py, so both refuse the same input).
  var INT_TEXT = /^-?[0-9]+$/;
  var MAX_INT_DIGITS = 15;
  var HUGE = 1e15;
  var BLANK = /^[ \t\n\r\f\v]*$/;
  var hasOwn = Object.prototype.hasOwnProperty;
  var prepared = typeof WeakMap === "function" ? new WeakMap() : null;

  function Fail(kind, message, plan) {
    this.kind = kind;
    this.message = message;
    this.plan = plan || null;
  }

  function field(obj, name) {
    if (!hasOwn.call(obj, name)) return null;
    var value = obj[name];
    return value === undefined ? null : value;
  }

  function ratio(text) {
    var parts = String(text).split("/");
    return [BigInt(parts[0]), BigInt(parts.length > 1 ? parts[1] : "1")];
  }

  function fmtInt(n) {
    var digits = String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return n < 0 ? "-" + digits : digits;
  }

  function orList(items) {
    if (items.length <= 1) return items.join("");
    return items.slice(0, -1).join(", ") + " or " + items[items.length - 1];
  }

  function lowerFirst(text) {
    return text.slice(0, 1).toLowerCase() + text.slice(1);
  }

  // Characters as Python counts them: code points, a surrogate pair being one.
  function codePoints(text) {
    var n = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      n++;
    }
    return n;
  }

  // The catalog arrives as lists (no catalog key can clash with an object property); index
  // it once per catalog object.
  function prepare(catalog) {
    var done = prepared && prepared.get(catalog);
    if (done) return done;
    var features = new Map();
    catalog.features.forEach(function (f) {
      var ladder = new Map();
      f.resolutions.forEach(function (r, i) {
        ladder.set(r.key, { index: i, label: r.label });
      });
      var models = new Map();
      f.models.forEach(function (m) {
        var mult = new Map();
        m.resolutions.forEach(function (r) {
          mult.set(r.key, ratio(r.multiplier));
        });
        models.set(m.key, {
          key: m.key,
          label: m.label,
          rate: ratio(m.rate),
          unit: m.unit,
          resolutionKeys: m.resolutions.map(function (r) { return r.key; }),
          mult: mult,
          choices: m.duration_choices,
          durationMin: m.duration_min,
          durationMax: m.duration_max,
          hasCount: m.has_count,
          countMin: m.count_min,
          countMax: m.count_max,
          charsPerUnit: m.chars_per_unit,
          maxChars: m.max_chars,
          minUnits: m.min_units,
        });
      });
      features.set(f.key, {
        key: f.key,
        label: f.label,
        selector: f.selector,
        selectorLabel: f.selector_label,
        ladder: ladder,
        models: models,
        modelLabels: f.models.map(function (m) { return m.label; }),
      });
    });
    var plans = new Map();
    var ordered = catalog.plans.slice().sort(function (a, b) { return a.rank - b.rank; });
    ordered.forEach(function (p) {
      plans.set(p.key, {
        key: p.key,
        name: p.name,
        unlimited: new Set(p.unlimited.map(function (pair) { return pair[0] + "\u0000" + pair[1]; })),
        maxResolution: new Map(p.max_resolution),
        maxDuration: new Map(p.max_duration),
      });
    });
    done = {
      features: features,
      featureLabels: catalog.features.map(function (f) { return f.label; }),
      plans: plans,
      ordered: ordered.map(function (p) { return plans.get(p.key); }),
    };
    if (prepared) prepared.set(catalog, done);
    return done;
  }

  function wholeNumber(value, message) {
    if (typeof value === "number") {
      if (Number.isInteger(value)) return value;
      throw new Fail("InvalidRequest", message);
    }
    if (typeof value === "string" && INT_TEXT.test(value)) {
      var negative = value.charAt(0) === "-";
      if (value.length - (negative ? 1 : 0) > MAX_INT_DIGITS) return negative ? -HUGE : HUGE;
      return parseInt(value, 10);
    }
    throw new Fail("InvalidRequest", message);
  }

  function violations(plan, feature, resolution, duration) {
    var broken = [];
    var cap = plan.maxResolution.get(feature.key);
    if (resolution !== null && cap !== undefined) {
      if (feature.ladder.get(resolution).index > feature.ladder.get(cap).index) broken.push("resolution");
    }
    var longest = plan.maxDuration.get(feature.key);
    if (duration !== null && longest !== undefined && duration > longest) broken.push("duration");
    return broken;
  }

  function planLimit(cat, plan, feature, resolution, duration) {
    var broken = violations(plan, feature, resolution, duration);
    if (!broken.length) return null;
    var parts = broken.map(function (what, i) {
      var text = what === "resolution"
        ? feature.ladder.get(resolution).label
        : feature.label + " longer than " + fmtInt(plan.maxDuration.get(feature.key)) + " s";
      return i === 0 ? text : lowerFirst(text);
    });
    var subject = parts.join(" and ");
    var required = null;
    for (var i = 0; i < cat.ordered.length; i++) {
      if (!violations(cat.ordered[i], feature, resolution, duration).length) {
        required = cat.ordered[i];
        break;
      }
    }
    if (required === null) {
      return new Fail("PlanLimit", subject + (parts.length === 1 ? " is" : " are") + " not available on any plan");
    }
    var verb = parts.length === 1 ? " needs" : " need";
    return new Fail("PlanLimit", subject + verb + " the " + required.name + " plan or higher", required);
  }

  function price(cat, planKey, request) {
    var plan = typeof planKey === "string" ? cat.plans.get(planKey) : undefined;
    if (plan === undefined) throw new Fail("UnknownPlan", "Unknown plan " + JSON.stringify(String(planKey)));
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      throw new Fail("InvalidRequest", "Send the generation settings as a set of fields");
    }

    var featureKey = field(request, "feature");
    if (typeof featureKey !== "string") throw new Fail("InvalidRequest", "Choose a feature");
    var feature = cat.features.get(featureKey);
    if (feature === undefined) {
      throw new Fail("UnknownFeature", "Unknown feature. Choose " + orList(cat.featureLabels) + ".");
    }

    var modelKey = field(request, feature.selector);
    if (modelKey === null && feature.selector !== "model") modelKey = field(request, "model");
    if (typeof modelKey !== "string") {
      throw new Fail("InvalidRequest", "Choose a " + feature.selectorLabel.toLowerCase() + " for " + feature.label);
    }
    var model = feature.models.get(modelKey);
    if (model === undefined) {
      throw new Fail("UnknownModel", "Unknown " + feature.selectorLabel.toLowerCase() + " for " + feature.label +
        ". Choose " + orList(feature.modelLabels) + ".");
    }

    var resolution = null;
    if (model.resolutionKeys.length) {
      resolution = field(request, "resolution");
      if (typeof resolution !== "string") throw new Fail("InvalidRequest", "Choose a resolution for " + model.label);
      if (!model.mult.has(resolution)) {
        var known = feature.ladder.get(resolution);
        var offered = orList(model.resolutionKeys.map(function (k) { return feature.ladder.get(k).label; }));
        throw new Fail("UnsupportedResolution", model.label + " does not offer " +
          (known !== undefined ? known.label : "that resolution") + ". Choose " + offered + ".");
      }
    }

    var duration = null;
    if (model.unit === "second") {
      duration = wholeNumber(field(request, "duration"), "Duration must be a whole number of seconds");
      if (model.choices !== null) {
        if (model.choices.indexOf(duration) < 0) {
          throw new Fail("OutOfRange", "Duration must be " +
            orList(model.choices.map(function (d) { return fmtInt(d) + " s"; })));
        }
      } else if (!(model.durationMin <= duration && duration <= model.durationMax)) {
        throw new Fail("OutOfRange", "Duration must be between " + fmtInt(model.durationMin) + " and " +
          fmtInt(model.durationMax) + " seconds");
      }
    }

    var count = 1;
    if (model.hasCount) {
      count = wholeNumber(field(request, "count"), "Count must be a whole number");
      if (!(model.countMin <= count && count <= model.countMax)) {
        throw new Fail("OutOfRange", "Count must be between " + fmtInt(model.countMin) + " and " + fmtInt(model.countMax));
      }
    }

    var characters = null;
    if (model.unit === "characters") {
      var text = field(request, "text");
      if (typeof text !== "string" || BLANK.test(text)) {
        throw new Fail("InvalidRequest", "Enter the text for the " + feature.label.toLowerCase());
      }
      characters = codePoints(text);
      if (characters > model.maxChars) {
        throw new Fail("TextTooLong", "Text is " + fmtInt(characters) + " characters; the limit is " + fmtInt(model.maxChars));
      }
    }

    var limit = planLimit(cat, plan, feature, resolution, duration);
    if (limit !== null) throw limit;

    var units;
    if (model.unit === "second") units = duration;
    else if (model.unit === "characters") {
      var padded = characters + model.charsPerUnit - 1;
      units = Math.max(model.minUnits, (padded - (padded % model.charsPerUnit)) / model.charsPerUnit);
    }
    else units = 1;

    if (plan.unlimited.has(feature.key + "\u0000" + model.key)) {
      return { cost: 0, unlimited: true, units: units };
    }
    var mult = resolution !== null ? model.mult.get(resolution) : [BigInt(1), BigInt(1)];
    var num = model.rate[0] * BigInt(units) * mult[0] * BigInt(count);
    var den = model.rate[1] * mult[1];
    var cost = (num + den - BigInt(1)) / den;
    return { cost: Number(cost), unlimited: false, units: units };
  }

  function quote(catalog, planKey, request) {
    try {
      var priced = price(prepare(catalog), planKey, request);
      return {
        ok: true, cost: priced.cost, unlimited: priced.unlimited, units: priced.units,
        label: priced.unlimited ? "Unlimited" : fmtInt(priced.cost) + (priced.cost === 1 ? " credit" : " credits"),
        error: null, kind: null, required_plan: null, required_plan_name: null,
      };
    } catch (e) {
      if (!(e instanceof Fail)) throw e;
      return {
        ok: false, cost: null, unlimited: false, units: null, label: null, error: e.message, kind: e.kind,
        required_plan: e.plan ? e.plan.key : null, required_plan_name: e.plan ? e.plan.name : null,
      };
    }
  }

  var api = { quote: quote };
  if (typeof module === "object" && module && module.exports) module.exports = api;
  if (typeof window !== "undefined") window.WorkroomQuote = api;
  else if (root) root.WorkroomQuote = api;
})(typeof globalThis !== "undefined" ? globalThis : this);

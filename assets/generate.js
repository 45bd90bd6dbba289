/*
 * Workroom Generate form: options and the live cost, entirely in the browser.
 *
 * The Generate button must show the cost of the current settings within one frame of any change,
 * so nothing here waits for the server: options come from the catalog (GET /api/catalog.json,
 * the same data the server prices from) and the cost from WorkroomQuote.quote (assets/quote.js,
 * the exact twin of billing/catalog/pricing.py quote()). The server prices every submission again and
 * never reads a price from here; `shown_cost` is sent only so it can refuse (charging nothing)
 * when its price differs from what the user saw.
 *
 * The page (workroom_app/components/generate_form.py) renders, per feature tab:
 *   form[data-generate-form][data-feature]     with hidden inputs request_id, shown_cost
 *   select[data-param=model|resolution|duration|count]   (empty: this script fills them)
 *   textarea[data-param=prompt|text], [data-role=char-count]
 *   button[data-testid=generate-button] > span[data-role=label]
 *   [data-role=upgrade], [data-role=note], [data-role=locks]
 *   [data-media-seconds] (lip sync, face swap): the upload's length in whole seconds, measured
 *     by the server, used as the duration (data-media-model: only for that model)
 * and #generate-context with data-plan, data-balance, data-submit-seq from the server state.
 * Everything is found again on each event, so React re-mounting a tab costs nothing.
 */
(function () {
  "use strict";
  if (window.WorkroomGenerate) return;

  var PARAMS = ["model", "resolution", "duration", "count"];
  var catalog = null;
  var loading = null;
  var memory = {}; // feature -> {param: value}: a tab shows what the user left in it
  var requestId = newId();
  var lastSeq = null;
  var lastQuote = new WeakMap(); // form -> quote result

  function newId() {
    if (window.crypto && crypto.randomUUID) return "web-" + crypto.randomUUID();
    return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 14);
  }

  function ensureQuote() {
    if (window.WorkroomQuote) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = "/quote.js";
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  function load() {
    if (loading) return loading;
    loading = Promise.all([
      fetch("/api/catalog.json", { credentials: "same-origin", cache: "no-cache" }).then(function (r) {
        if (!r.ok) throw new Error("catalog " + r.status);
        return r.json();
      }),
      ensureQuote(),
    ]).then(function (parts) {
      catalog = parts[0];
      scan();
    }).catch(function (err) {
      loading = null;
      console.error("Workroom: could not load the price list", err);
      setTimeout(load, 2000);
    });
    return loading;
  }

  function context() {
    var el = document.getElementById("generate-context");
    var plan = (el && el.getAttribute("data-plan")) || (catalog && catalog.default_plan) || "free";
    var balance = el ? parseInt(el.getAttribute("data-balance") || "0", 10) : 0;
    return { plan: plan, balance: isNaN(balance) ? 0 : balance };
  }

  function featureOf(key) {
    for (var i = 0; catalog && i < catalog.features.length; i++) {
      if (catalog.features[i].key === key) return catalog.features[i];
    }
    return null;
  }

  function modelOf(feature, key) {
    for (var i = 0; i < feature.models.length; i++) if (feature.models[i].key === key) return feature.models[i];
    return null;
  }

  function durationsOf(model) {
    if (model.unit !== "second") return [];
    if (model.duration_choices) return model.duration_choices.slice();
    var out = [];
    for (var d = model.duration_min; d <= model.duration_max; d++) out.push(d);
    return out;
  }

  function countsOf(model) {
    if (!model.has_count) return [];
    var out = [];
    for (var c = model.count_min; c <= model.count_max; c++) out.push(c);
    return out;
  }

  function resolutionLabel(feature, key) {
    for (var i = 0; i < feature.resolutions.length; i++) if (feature.resolutions[i].key === key) return feature.resolutions[i].label;
    return key;
  }

  // A complete request built around one choice, to ask quote.js whether the plan allows it.
  function probe(feature, model, over) {
    var req = { feature: feature.key, model: model.key, text: "x", count: model.count_min || 1 };
    if (model.resolutions.length) req.resolution = model.resolutions[0].key;
    var ds = durationsOf(model);
    if (ds.length) req.duration = ds[0];
    for (var k in over) req[k] = over[k];
    return req;
  }

  function lockOf(plan, feature, model, over) {
    var q = WorkroomQuote.quote(catalog, plan, probe(feature, model, over));
    if (!q.ok && q.kind === "PlanLimit") return { reason: q.error, plan: q.required_plan_name };
    return null;
  }

  // Which options a plan locks depends only on the plan and the catalog: work it out once.
  var optionCache = new Map();

  function optionsFor(plan, feature, model, param) {
    var key = plan + "\u0000" + feature.key + "\u0000" + (model ? model.key : "") + "\u0000" + param;
    var known = optionCache.get(key);
    if (known && known.catalog === catalog) return known.list;
    var list = computeOptions(plan, feature, model, param);
    optionCache.set(key, { catalog: catalog, list: list });
    return list;
  }

  function computeOptions(plan, feature, model, param) {
    var list = [];
    if (param === "model") {
      feature.models.forEach(function (m) {
        var lock = null;
        var res = m.resolutions.map(function (r) { return lockOf(plan, feature, m, { resolution: r.key }); });
        var dur = durationsOf(m).map(function (d) { return lockOf(plan, feature, m, { duration: d, resolution: m.resolutions.length ? m.resolutions[0].key : undefined }); });
        if (res.length && res.every(Boolean)) lock = res[0];
        else if (dur.length && dur.every(Boolean)) lock = dur[0];
        list.push({ value: m.key, label: m.label, lock: lock });
      });
    } else if (param === "resolution") {
      model.resolutions.forEach(function (r) {
        list.push({ value: r.key, label: resolutionLabel(feature, r.key), lock: lockOf(plan, feature, model, { resolution: r.key }) });
      });
    } else if (param === "duration") {
      durationsOf(model).forEach(function (d) {
        var over = { duration: d };
        if (model.resolutions.length) over.resolution = model.resolutions[0].key;
        list.push({ value: String(d), label: d + " s", lock: lockOf(plan, feature, model, over) });
      });
    } else if (param === "count") {
      countsOf(model).forEach(function (c) {
        list.push({ value: String(c), label: c === 1 ? "1 image" : c + " images", lock: null });
      });
    }
    return list;
  }

  function fill(select, options, wanted) {
    var sig = JSON.stringify(options.map(function (o) { return [o.value, o.lock ? o.lock.reason : ""]; }));
    if (select.getAttribute("data-sig") !== sig) {
      while (select.firstChild) select.removeChild(select.firstChild);
      options.forEach(function (o) {
        var opt = document.createElement("option");
        opt.value = o.value;
        opt.textContent = o.lock ? o.label + " \u2014 " + (o.lock.plan ? "needs " + o.lock.plan : "not available") : o.label;
        if (o.lock) {
          opt.disabled = true;
          opt.title = o.lock.reason;
          opt.setAttribute("data-locked", "true");
        }
        select.appendChild(opt);
      });
      select.setAttribute("data-sig", sig);
    }
    var pick = null;
    options.forEach(function (o) { if (!o.lock && o.value === wanted) pick = o.value; });
    if (pick === null) options.forEach(function (o) { if (pick === null && !o.lock) pick = o.value; });
    if (pick !== null && select.value !== pick) select.value = pick;
    return options.filter(function (o) { return o.lock; });
  }

  // The `hidden` attribute, not a style: the page's own styles are classes React keeps applying.
  function show(el, visible) {
    if (el && el.hidden === visible) el.hidden = !visible;
  }

  function part(form, selector) {
    return form.querySelector(selector);
  }

  // Rebuild the option lists of one form (model first: the others depend on it).
  function populate(form) {
    var feature = featureOf(form.getAttribute("data-feature"));
    if (!feature) return;
    var plan = context().plan;
    var saved = memory[feature.key] || {};
    var locked = [];
    var modelSelect = part(form, "select[data-param=model]");
    if (!modelSelect) return;
    var current = modelSelect.options.length ? modelSelect.value : saved.model;
    locked = locked.concat(fill(modelSelect, optionsFor(plan, feature, null, "model"), current));
    var model = modelOf(feature, modelSelect.value) || feature.models[0];
    ["resolution", "duration", "count"].forEach(function (param) {
      var select = part(form, "select[data-param=" + param + "]");
      if (!select) return;
      var options = optionsFor(plan, feature, model, param);
      var wrap = select.closest("[data-field]");
      show(wrap, options.length > 0);
      select.disabled = options.length === 0;
      if (!options.length) return;
      var want = select.options.length ? select.value : saved[param];
      if (param === "resolution" && !select.options.length && !saved[param]) {
        // Start at 720p-class quality where the plan allows it: the lowest is rarely what is wanted.
        options.forEach(function (o) { if (!want && !o.lock && o.value === "720p") want = o.value; });
      }
      locked = locked.concat(fill(select, options, want));
    });
    var text = part(form, "textarea[data-param=text]");
    if (text && saved.text !== undefined && text.value === "" && !form.hasAttribute("data-restored")) text.value = saved.text;
    var prompt = part(form, "textarea[data-param=prompt]");
    if (prompt && saved.prompt !== undefined && prompt.value === "" && !form.hasAttribute("data-restored")) prompt.value = saved.prompt;
    form.setAttribute("data-restored", "1");
    var locks = part(form, "[data-role=locks]");
    if (locks) {
      var seen = {};
      var lines = [];
      locked.forEach(function (o) {
        if (!seen[o.lock.reason]) { seen[o.lock.reason] = 1; lines.push(o.lock.reason); }
      });
      var planName = plan;
      (catalog.plans || []).forEach(function (p) { if (p.key === plan) planName = p.name; });
      var lockText = lines.length ? "Locked on the " + planName + " plan: " + lines.join("; ") + "." : "";
      if (locks.textContent !== lockText) locks.textContent = lockText;
      show(locks, lines.length > 0);
    }
  }

  function requestOf(form) {
    var req = { feature: form.getAttribute("data-feature") };
    PARAMS.forEach(function (param) {
      var select = part(form, "select[data-param=" + param + "]");
      if (select && !select.disabled && select.value !== "") req[param] = select.value;
    });
    var text = part(form, "textarea[data-param=text]");
    if (text) req.text = text.value;
    var media = mediaOf(form, req);
    if (media && media.seconds) req.duration = media.seconds;
    return req;
  }

  // Lip sync and face swap video last as long as their upload: the server measured it and put
  // the whole seconds it bills in data-media-seconds (it measures again on submit, and never
  // reads a duration from here). null when this form's model is not priced by an upload.
  function mediaOf(form, req) {
    var el = part(form, "[data-media-seconds]");
    if (!el) return null;
    var model = el.getAttribute("data-media-model");
    if (model && model !== req.model) return null;
    return { seconds: el.getAttribute("data-media-seconds") || "", what: el.getAttribute("data-media-what") || "file" };
  }

  function remember(form) {
    var key = form.getAttribute("data-feature");
    var req = requestOf(form);
    var prompt = part(form, "textarea[data-param=prompt]");
    if (prompt) req.prompt = prompt.value;
    memory[key] = req;
  }

  // The button text, the note under it and Upgrade: the one place the cost reaches the screen.
  function render(form) {
    var label = part(form, "[data-role=label]");
    var button = part(form, "[data-testid=generate-button]");
    if (!label || !button || !catalog) return;
    var ctx = context();
    var req = requestOf(form);
    var q = WorkroomQuote.quote(catalog, ctx.plan, req);
    var placeholder = false;
    if (!q.ok && req.text !== undefined && /^[ \t\n\r\f\v]*$/.test(req.text)) {
      // No text yet: show what the shortest text costs; the server asks for the text on submit.
      var probeReq = {};
      for (var k in req) probeReq[k] = req[k];
      probeReq.text = "x";
      q = WorkroomQuote.quote(catalog, ctx.plan, probeReq);
      placeholder = true;
    }
    lastQuote.set(form, q);
    var media = mediaOf(form, req);
    // "Duration: the length of ..." only where it applies (a face swap of a picture has none).
    show(part(form, "[data-media-seconds]"), media !== null);
    var counter = part(form, "[data-role=char-count]");
    if (counter && req.text !== undefined) {
      var model = modelOf(featureOf(req.feature), req.model);
      var n = Array.from(req.text).length;
      var max = model && model.max_chars ? model.max_chars : 0;
      var count = n.toLocaleString("en-US") + (max ? " / " + max.toLocaleString("en-US") : "") + " characters";
      // Only real changes touch the DOM: the observer below would otherwise wake itself forever.
      if (counter.textContent !== count) counter.textContent = count;
      counter.style.color = max && n > max ? "var(--red-11)" : "";
    }
    var note = part(form, "[data-role=note]");
    var upgrade = part(form, "[data-role=upgrade]");
    var pending = form.getAttribute("data-pending") === "1";
    var text, noteText = "", short = 0, offerUpgrade = false, ok = q.ok;
    if (q.ok) {
      text = "Generate \u00b7 " + q.label;
      if (!q.unlimited && q.cost > ctx.balance) {
        short = q.cost - ctx.balance;
        text += " \u00b7 " + short.toLocaleString("en-US") + " more needed";
        noteText = "You have " + ctx.balance.toLocaleString("en-US") + " credits: " +
          short.toLocaleString("en-US") + " more " + (short === 1 ? "credit is" : "credits are") + " needed. Upgrade to get more.";
        offerUpgrade = true;
      } else if (placeholder) {
        noteText = "";
      }
    } else if (media && !media.seconds) {
      text = "Generate";
      noteText = "Upload the " + media.what + " to see the cost: it is priced by its length.";
    } else {
      text = "Generate";
      noteText = q.error;
      offerUpgrade = !!q.required_plan;
    }
    if (label.textContent !== text) label.textContent = text;
    button.disabled = pending || !ok || short > 0;
    button.setAttribute("data-cost", q.ok ? String(q.cost) : "");
    button.setAttribute("data-short", String(short));
    if (note && note.textContent !== noteText) note.textContent = noteText;
    show(note, noteText !== "");
    show(upgrade, offerUpgrade);
  }

  function formOf(target) {
    return target && target.closest ? target.closest("form[data-generate-form]") : null;
  }

  function scan() {
    if (lastSeq === null) {
      var ctx = document.getElementById("generate-context");
      if (ctx) lastSeq = ctx.getAttribute("data-submit-seq");
    }
    if (!catalog) return;
    var forms = document.querySelectorAll("form[data-generate-form]");
    for (var i = 0; i < forms.length; i++) {
      var form = forms[i];
      if (!form.hasAttribute("data-ready")) {
        populate(form);
        form.setAttribute("data-ready", "1");
      }
      render(form);
    }
  }

  function onInput(ev) {
    var form = formOf(ev.target);
    if (!form || !catalog) return;
    var param = ev.target.getAttribute && ev.target.getAttribute("data-param");
    if (param === "model") populate(form);
    render(form);
    remember(form);
  }

  document.addEventListener("input", onInput, true);
  document.addEventListener("change", onInput, true);

  // Runs before React's submit handler (capture at the document): stamp the request id and the
  // cost the button showed into the form so the server can hold the charge to it.
  document.addEventListener("submit", function (ev) {
    var form = formOf(ev.target);
    if (!form) return;
    var button = part(form, "[data-testid=generate-button]");
    if (button && button.disabled) {
      ev.preventDefault();
      ev.stopPropagation();
      return;
    }
    var q = lastQuote.get(form);
    var id = part(form, "input[name=request_id]");
    var shown = part(form, "input[name=shown_cost]");
    if (id) id.value = requestId;
    if (shown) shown.value = q && q.ok ? String(q.cost) : "";
    form.setAttribute("data-pending", "1");
    window.__workroomSubmitAt = performance.now();
    render(form);
    setTimeout(function () {
      if (form.getAttribute("data-pending") === "1") { form.removeAttribute("data-pending"); render(form); }
    }, 15000);
  }, true);

  // Server-side changes reach the page as attribute changes (plan, balance, an answered submit),
  // and React mounts a tab's form when it is chosen: both are seen here before the next paint.
  function onMutations(records) {
    var ctxChanged = false, added = false;
    for (var i = 0; i < records.length; i++) {
      var r = records[i];
      if (r.type === "attributes" && r.target.id === "generate-context") ctxChanged = true;
      else if (r.type === "attributes") added = true; // an upload's measured length arrived
      else if (r.type === "childList" && r.addedNodes.length) added = true;
    }
    if (ctxChanged) {
      var el = document.getElementById("generate-context");
      var seq = el ? el.getAttribute("data-submit-seq") : null;
      var forms = document.querySelectorAll("form[data-generate-form]");
      if (seq !== lastSeq) {
        requestId = newId();
        lastSeq = seq;
        for (var j = 0; j < forms.length; j++) forms[j].removeAttribute("data-pending");
      }
      for (var k = 0; k < forms.length; k++) forms[k].removeAttribute("data-ready");
    }
    if (ctxChanged || added) scan();
  }

  function start() {
    var ctx = document.getElementById("generate-context");
    lastSeq = ctx ? ctx.getAttribute("data-submit-seq") : null;
    new MutationObserver(onMutations).observe(document.body, {
      subtree: true, childList: true, attributes: true,
      attributeFilter: ["data-plan", "data-balance", "data-submit-seq", "data-media-seconds"],
    });
    load();
  }

  window.WorkroomGenerate = {
    scan: scan,
    reload: function () { loading = null; return load(); },
    quoteOf: function (form) { return lastQuote.get(form) || null; },
    catalog: function () { return catalog; },
  };

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();

// microgradnet playground: the page. It holds no model: the server trains, the page draws the
// frames it sends and sends the setting (see PROTOCOL.md beside the server's code).
"use strict";

(function () {
  // ------------------------------------------------------------------ state
  const state = {
    options: null,        // GET /api/options
    setting: null,        // run A's setting, mirrored in the URL hash
    ab: { on: false, field: "activation", value: null },
    data: null,           // the last "data" message
    runs: { A: newRun(), B: newRun() },
    playing: false,
    heatmaps: true,
    ws: null,
    dirty: false,         // a frame arrived that is not drawn yet
    hashOwn: "",          // the hash this page wrote last (not a user's edit)
    errors: [],
    warnings: [],
    lastExport: null,
  };
  // Read by the browser tests and the frame-rate benchmark.
  const stats = { framesReceived: 0, framesDrawn: 0, drawMs: 0, rafTicks: 0,
    firstDraw: 0, lastDraw: 0 };
  window.playground = { state, stats };

  function newRun() {
    return { frame: null, loss: [], grads: [], stepsAt: [] };
  }

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ colours
  // TF Playground's diverging scale: -1 orange, 0 near white, +1 blue.
  const NEG = [245, 147, 34], MID = [232, 234, 235], POS = [8, 119, 189];
  const LUT = new Uint8ClampedArray(256 * 4);
  const GREY = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = i / 255 * 2 - 1;
    const a = t < 0 ? NEG : POS, u = Math.abs(t);
    for (let c = 0; c < 3; c++) LUT[i * 4 + c] = MID[c] + (a[c] - MID[c]) * u;
    LUT[i * 4 + 3] = 255;
    const g = 200 + (i / 255 - 0.5) * 60;
    GREY[i * 4] = GREY[i * 4 + 1] = GREY[i * 4 + 2] = g;
    GREY[i * 4 + 3] = 255;
  }
  function colour(v) {  // v in [-1, 1] -> css colour
    const i = Math.max(0, Math.min(255, Math.round((v + 1) / 2 * 255))) * 4;
    return `rgb(${LUT[i]},${LUT[i + 1]},${LUT[i + 2]})`;
  }

  // ------------------------------------------------------------------ grids
  function b64bytes(s) {
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  // A grid from the server: {res, b64} of res*res uint8, 0 -> -1 and 255 -> +1, first row = top.
  function decodeGrid(g) {
    if (!g || !g.b64) return null;
    if (!g._bytes) g._bytes = b64bytes(g.b64);
    return g._bytes;
  }
  const scratch = {};  // res -> {canvas, ctx, image}: reused, nothing allocated per frame
  function gridCanvas(bytes, res, lut) {
    let s = scratch[res];
    if (!s) {
      const c = document.createElement("canvas");
      c.width = c.height = res;
      const ctx = c.getContext("2d");
      s = scratch[res] = { c, ctx, image: ctx.createImageData(res, res) };
    }
    const d = s.image.data, n = res * res;
    for (let i = 0; i < n; i++) {
      const k = bytes[i] * 4, j = i * 4;
      d[j] = lut[k]; d[j + 1] = lut[k + 1]; d[j + 2] = lut[k + 2]; d[j + 3] = 255;
    }
    s.ctx.putImageData(s.image, 0, 0);
    return s.c;
  }
  function drawGrid(ctx, g, x, y, w, h, lut) {
    const bytes = decodeGrid(g);
    if (!bytes || bytes.length !== g.res * g.res) return false;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(gridCanvas(bytes, g.res, lut || LUT), x, y, w, h);
    return true;
  }

  // ------------------------------------------------------------------ setting <-> URL hash
  // Every key of the setting, in the hash as key=value; lists comma-joined. Types come from
  // the server's default setting, so a hand-edited link is read back with the right types.
  function settingToHash(s) {
    const parts = [];
    for (const k of Object.keys(s)) {
      const v = s[k];
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(Array.isArray(v) ? v.join(",") : v));
    }
    return "#" + parts.join("&");
  }
  function hashToSetting(hash, defaults) {
    const out = {};
    const h = hash.replace(/^#/, "");
    if (!h) return null;
    for (const part of h.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      const raw = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
      const d = defaults ? defaults[k] : undefined;
      if (Array.isArray(d)) {
        const items = raw === "" ? [] : raw.split(",");
        const numeric = d.length ? typeof d[0] === "number" : /^-?\d+$/.test(items[0] || "");
        out[k] = numeric ? items.map(Number) : items;
      } else if (typeof d === "number") {
        out[k] = raw === "" ? NaN : Number(raw);
      } else if (typeof d === "boolean") {
        out[k] = raw === "true" || raw === "1";
      } else {
        out[k] = raw;
      }
    }
    return out;
  }
  function writeHash() {
    const h = settingToHash(state.setting);
    if (location.hash !== h) {
      state.hashOwn = h;
      history.replaceState(null, "", h);
    }
  }

  // ------------------------------------------------------------------ the socket
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    state.ws = ws;
    ws.onopen = () => { sendSetup(); if (!state.heatmaps) send({ op: "heatmaps", on: false }); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { showError("The server sent a message that is not JSON."); return; }
      onMessage(msg);
    };
    ws.onclose = () => {
      setPlaying(false);
      showError("The connection to the server closed. Reload the page when it runs again.");
    };
  }
  function send(msg) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
  }
  function sendSetup() {
    clearRun("A"); clearRun("B");
    send({ op: "setup", setting: state.setting });
    if (state.ab.on) send({ op: "ab", setting_b: settingB() });
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "data": state.data = msg; clearErrors(); state.dirty = true; break;
      case "frame": onFrame(msg); break;
      case "state": if ("playing" in msg) setPlaying(!!msg.playing, true); break;
      case "export": onExport(msg); break;
      case "error": showError(msg.message || "error", msg.field); break;
      default: break;
    }
  }

  function onFrame(f) {
    stats.framesReceived++;
    const run = state.runs[f.run === "B" ? "B" : "A"];
    run.frame = f;
    if (typeof f.train_loss === "number") {
      const last = run.loss[run.loss.length - 1];
      if (!last || last.step !== f.step) {
        run.loss.push({ step: f.step, train: f.train_loss, test: f.test_loss });
        if (f.grad_norms) run.grads.push(f.grad_norms);
        run.stepsAt.push([performance.now(), f.step]);
        if (run.loss.length > 2000) thin(run);
      }
    }
    if (f.warnings && f.warnings.length) addWarnings(f.warnings, f.run);
    state.dirty = true;
  }
  function thin(run) {  // keep the charts' cost bounded on long runs: every other point
    run.loss = run.loss.filter((_, i) => i % 2 === 0);
    run.grads = run.grads.filter((_, i) => i % 2 === 0);
    run.stepsAt = run.stepsAt.slice(-50);
  }
  function clearRun(name) { state.runs[name] = newRun(); state.dirty = true; }

  // ------------------------------------------------------------------ errors and warnings
  function showError(message, field) {
    state.errors.push(message);
    const box = $("errors");
    box.hidden = false;
    box.textContent = message;
    const close = document.createElement("button");
    close.textContent = "dismiss";
    close.onclick = clearErrors;
    box.appendChild(close);
    document.querySelectorAll(".field.bad").forEach((e) => e.classList.remove("bad"));
    if (field) {
      const el = document.querySelector(`[data-key="${CSS.escape(field)}"]`);
      if (el) el.closest(".field")?.classList.add("bad");
    }
  }
  function clearErrors() {
    $("errors").hidden = true;
    $("errors").textContent = "";
    document.querySelectorAll(".field.bad").forEach((e) => e.classList.remove("bad"));
  }
  function addWarnings(list, run) {
    const ul = $("warnings");
    for (const w of list) {
      const text = (state.ab.on ? `[${run || "A"}] ` : "") + (typeof w === "string" ? w : w.message);
      if (state.warnings.includes(text)) continue;
      state.warnings.push(text);
      const li = document.createElement("li");
      li.textContent = text;
      ul.appendChild(li);
    }
  }
  function clearWarnings() { state.warnings = []; $("warnings").textContent = ""; }

  // ------------------------------------------------------------------ controls
  function setPlaying(on, fromServer) {
    state.playing = on;
    const b = $("play");
    b.classList.toggle("playing", on);
    b.innerHTML = on ? "&#10073;&#10073;" : "&#9654;";
    if (!fromServer) send({ op: on ? "play" : "pause" });
  }
  function changeSetting(patch, keepPreset) {
    Object.assign(state.setting, patch);
    if (!keepPreset) $("preset").value = "";
    writeHash();
    clearWarnings();
    renderControls();
    sendSetup();
  }

  // Hyper-parameters in the top bar: [key, label, kind, choices key in options].
  const HYPER = [
    ["problem", "Problem type", "select", "problems"],
    ["activation", "Activation", "select", "activations"],
    ["initializer", "Initializer", "select", "initializers"],
    ["optimizer", "Optimizer", "select", "optimizers"],
    ["learning_rate", "Learning rate", "number", null],
    ["momentum", "Momentum", "number", null],
    ["regularization", "Regularization", "select", "regularizations"],
    ["regularization_rate", "Reg. rate", "number", null],
    ["batch_size", "Batch size", "number", null],
    ["seed", "Seed", "number", null],
  ];
  const DATAPARAMS = [
    ["noise", "Noise", 0, 0.5, 0.01],
    ["train_ratio", "Training data ratio", 0.1, 0.9, 0.05],
  ];

  function field(key, label, input) {
    const f = document.createElement("div");
    f.className = "field";
    const l = document.createElement("label");
    l.textContent = label;
    l.htmlFor = "ctl-" + key;
    input.id = "ctl-" + key;
    input.dataset.key = key;
    f.append(l, input);
    return f;
  }
  function makeInput(key, kind, choices) {
    let el;
    if (kind === "select") {
      el = document.createElement("select");
      for (const c of choices || []) {
        const o = document.createElement("option");
        o.value = o.textContent = c;
        el.appendChild(o);
      }
    } else {
      el = document.createElement("input");
      el.type = "number";
      el.step = "any";
    }
    return el;
  }
  function readInput(el, kind) {
    if (kind === "select") return el.value;
    const t = el.value.trim();
    return t === "" ? NaN : Number(t);   // NaN goes to the server, which says what is wrong
  }

  function buildControls() {
    const o = state.options;
    const hyper = $("hyper");
    hyper.textContent = "";
    for (const [key, label, kind, choicesKey] of HYPER) {
      if (!(key in state.setting)) continue;
      const el = makeInput(key, kind, choicesKey ? o[choicesKey] : null);
      el.addEventListener("change", () => changeSetting({ [key]: readInput(el, kind) }));
      hyper.appendChild(field(key, label, el));
    }
    const dp = $("dataparams");
    dp.textContent = "";
    for (const [key, label, lo, hi, step] of DATAPARAMS) {
      if (!(key in state.setting)) continue;
      const el = document.createElement("input");
      el.type = "range"; el.min = lo; el.max = hi; el.step = step;
      const f = field(key, label, el);
      const val = document.createElement("span");
      val.className = "val";
      f.querySelector("label").appendChild(val);
      el.addEventListener("input", () => { val.textContent = " " + el.value; });
      el.addEventListener("change", () => changeSetting({ [key]: Number(el.value) }));
      dp.appendChild(f);
    }
    const ds = $("datasets");
    ds.textContent = "";
    for (const name of o.datasets) {
      const b = document.createElement("button");
      b.dataset.dataset = name;
      b.title = name;
      const c = document.createElement("canvas");
      c.width = c.height = 44;
      const s = document.createElement("span");
      s.textContent = name;
      b.append(c, s);
      b.addEventListener("click", () => changeSetting({ dataset: name }));
      ds.appendChild(b);
      drawDatasetIcon(c, name);
    }
    const ps = $("preset");
    for (const name of Object.keys(o.presets || {})) {
      const op = document.createElement("option");
      op.value = op.textContent = name;
      ps.appendChild(op);
    }
    ps.addEventListener("change", () => {
      const p = o.presets[ps.value];
      if (!p) return;
      setPlaying(false);
      state.setting = Object.assign({}, o.defaults, p.setting || p);
      changeSetting({}, true);
      if (p.setting_b) {
        state.ab = { on: true, field: null, value: null, full: p.setting_b };
        renderAB();
        send({ op: "ab", setting_b: settingB() });
      }
    });
    buildAB();
  }

  function renderControls() {
    const s = state.setting;
    for (const [key, , kind] of HYPER) {
      const el = $("ctl-" + key);
      if (el) el.value = kind === "select" ? s[key] : (Number.isFinite(s[key]) ? s[key] : "");
    }
    for (const [key] of DATAPARAMS) {
      const el = $("ctl-" + key);
      if (el) { el.value = s[key]; el.previousSibling.querySelector(".val").textContent = " " + s[key]; }
    }
    document.querySelectorAll("#datasets button").forEach((b) =>
      b.classList.toggle("selected", b.dataset.dataset === s.dataset));
    $("layer-count").textContent = s.layers.length;
    layoutNetwork();
  }

  // Small icons of each data set, drawn from its name (what it looks like, not its data).
  function drawDatasetIcon(c, name) {
    const ctx = c.getContext("2d"), W = c.width;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, W);
    const dot = (x, y, v) => { ctx.fillStyle = colour(v); ctx.fillRect(x - 1.5, y - 1.5, 3, 3); };
    let seed = 7;
    const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
    for (let i = 0; i < 90; i++) {
      const u = rnd() * 2 - 1, v = rnd() * 2 - 1;
      const x = (u + 1) / 2 * W, y = (1 - v) / 2 * W;
      if (/circle/.test(name)) dot(x, y, Math.hypot(u, v) < 0.5 ? 1 : -1);
      else if (/xor/.test(name)) dot(x, y, u * v > 0 ? 1 : -1);
      else if (/gauss/.test(name) && !/reg/.test(name)) {
        const k = i % 2 ? 1 : -1;
        dot(((k * 0.45 + u * 0.3) + 1) / 2 * W, (1 - (k * 0.45 + v * 0.3)) / 2 * W, k);
      } else if (/spiral/.test(name)) {
        const t = i / 90 * 3 * Math.PI, k = i % 2 ? 1 : -1, r = t / (3 * Math.PI) * 0.9;
        dot((1 + k * r * Math.cos(t)) / 2 * W, (1 - k * r * Math.sin(t)) / 2 * W, k);
      } else if (/moon/.test(name)) {
        const t = rnd() * Math.PI, k = i % 2;
        const px = k ? 1 - Math.cos(t) : Math.cos(t), py = k ? 0.5 - Math.sin(t) : Math.sin(t);
        dot((px + 1.2) / 3.4 * W, (1.2 - py) / 2.4 * W, k ? 1 : -1);
      } else if (/plane/.test(name)) dot(x, y, (u + v) / 2);
      else if (/reg/.test(name)) dot(x, y, Math.exp(-4 * ((u - .4) ** 2 + (v - .4) ** 2)) * 2 - 1);
      else if (/sine/.test(name)) dot(x, (1 - (Math.sin(u * 3) * 0.7 + (rnd() - 0.5) * 0.2)) / 2 * W, 1);
      else if (/ramp/.test(name)) dot(x, (1 - (Math.max(0, u) * 1.6 - 0.8)) / 2 * W, 1);
      else if (/perceptron/.test(name)) dot(x, y, v > 0.3 * u ? 1 : -1);
      else dot(x, y, u);
    }
  }

  // ------------------------------------------------------------------ A/B
  const AB_FIELDS = [
    ["activation", "select", "activations"], ["initializer", "select", "initializers"],
    ["optimizer", "select", "optimizers"], ["learning_rate", "number"],
    ["layers", "text"], ["batch_size", "number"], ["regularization", "select", "regularizations"],
    ["regularization_rate", "number"], ["momentum", "number"], ["seed", "number"],
  ];
  function buildAB() {
    const sel = $("ab-field");
    sel.textContent = "";
    for (const [key] of AB_FIELDS) {
      if (!(key in state.setting)) continue;
      const o = document.createElement("option");
      o.value = o.textContent = key;
      sel.appendChild(o);
    }
    sel.value = state.ab.field || "activation";
    sel.addEventListener("change", () => { state.ab.field = sel.value; state.ab.value = null; abValueInput(); });
    $("ab-toggle").addEventListener("click", () => {
      if (state.ab.on) {
        state.ab.on = false;
        state.ab.full = null;
        send({ op: "ab_off" });
        clearRun("B");
      } else {
        state.ab.on = true;
        state.ab.field = sel.value;
        state.ab.value = readAB();
        clearRun("A"); clearRun("B");
        send({ op: "ab", setting_b: settingB() });
      }
      renderAB();
    });
    abValueInput();
  }
  function abSpec(key) { return AB_FIELDS.find((f) => f[0] === key); }
  function abValueInput() {
    const slot = $("ab-value-slot");
    slot.textContent = "";
    const [key, kind, choicesKey] = abSpec($("ab-field").value);
    let el;
    if (kind === "text") {
      el = document.createElement("input");
      el.type = "text"; el.size = 8; el.placeholder = "e.g. 8,8";
      el.value = state.setting[key].join(",");
    } else {
      el = makeInput(key, kind, choicesKey ? state.options[choicesKey] : null);
      const cur = state.setting[key];
      if (kind === "select") {
        const other = (state.options[choicesKey] || []).find((c) => c !== cur);
        el.value = other || cur;
      } else el.value = cur;
    }
    el.id = "ab-value";
    slot.appendChild(el);
  }
  function readAB() {
    const [key, kind] = abSpec($("ab-field").value);
    const el = $("ab-value");
    if (kind === "text") {
      const t = el.value.trim();
      return t === "" ? [] : t.split(",").map((v) => Number(v.trim()));
    }
    return readInput(el, kind);
  }
  function settingB() {
    if (state.ab.full) return Object.assign({}, state.setting, state.ab.full);
    return Object.assign({}, state.setting, { [state.ab.field]: state.ab.value });
  }
  function renderAB() {
    $("ab-toggle").classList.toggle("on", state.ab.on);
    $("ab-toggle").textContent = state.ab.on ? "Stop comparing" : "Compare";
    $("fig-B").hidden = !state.ab.on;
    let diff = "";
    if (state.ab.on) {
      const b = settingB();
      diff = Object.keys(b).filter((k) => JSON.stringify(b[k]) !== JSON.stringify(state.setting[k]))
        .map((k) => `${k}=${Array.isArray(b[k]) ? b[k].join(",") : b[k]}`).join(", ");
    }
    $("b-diff").textContent = diff ? `(${diff})` : "";
    state.dirty = true;
  }

  // ------------------------------------------------------------------ the network diagram
  const NODE = 40, FEAT = 34, COLW = 104, TOP = 58;
  let layout = null;
  function enabledFeatures() {
    if (state.data && Array.isArray(state.data.features)) return state.data.features;
    return state.setting.features || [];
  }
  function layoutNetwork() {
    const s = state.setting;
    const feats = state.options.features || [];
    const hidden = s.layers;
    const cols = [];
    const maxRows = Math.max(feats.length, ...hidden, 1);
    const H = TOP + maxRows * (NODE + 12) + 30;
    // input column: every feature the server offers, the enabled ones bright
    cols.push(feats.map((name, i) => ({ x: 60, y: TOP + i * (FEAT + 12), size: FEAT, name })));
    hidden.forEach((n, l) => {
      const col = [];
      for (let i = 0; i < n; i++) col.push({ x: 60 + (l + 1) * COLW, y: TOP + i * (NODE + 12), size: NODE });
      cols.push(col);
    });
    const W = 60 + (hidden.length + 1) * COLW + 30;
    layout = { cols, W, H };
    const cv = $("netcanvas");
    const dpr = window.devicePixelRatio || 1;
    cv.width = W * dpr; cv.height = H * dpr;
    cv.style.width = W + "px"; cv.style.height = H + "px";
    cv.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
    buildOverlay();
    state.dirty = true;
  }
  function buildOverlay() {
    const ov = $("netoverlay");
    ov.textContent = "";
    const s = state.setting, lim = (state.options.limits || {});
    const maxN = lim.max_neurons || 8;
    const feats = state.options.features || [];
    const on = new Set(s.features || []);
    layout.cols[0].forEach((nd) => {
      const box = document.createElement("div");
      box.className = "featbox";
      box.dataset.feature = nd.name;
      box.title = (on.has(nd.name) ? "Disable " : "Enable ") + nd.name;
      Object.assign(box.style, { left: nd.x + "px", top: nd.y + "px", width: nd.size + "px", height: nd.size + "px" });
      box.addEventListener("click", () => {
        const next = feats.filter((f) => (f === nd.name ? !on.has(f) : on.has(f)));
        changeSetting({ features: next });
      });
      const lab = document.createElement("div");
      lab.className = "featlabel";
      lab.textContent = nd.name;
      Object.assign(lab.style, { left: nd.x - 50 + "px", top: nd.y + nd.size / 2 - 7 + "px" });
      ov.append(box, lab);
    });
    s.layers.forEach((n, l) => {
      const ctl = document.createElement("div");
      ctl.className = "layerctl";
      const x = 60 + (l + 1) * COLW;
      Object.assign(ctl.style, { left: x - 12 + "px", top: "4px" });
      const plus = document.createElement("button");
      plus.className = "pm"; plus.textContent = "+"; plus.title = `Add a neuron to layer ${l + 1}`;
      plus.dataset.layer = l; plus.dataset.act = "add";
      const minus = document.createElement("button");
      minus.className = "pm"; minus.innerHTML = "&minus;"; minus.title = `Remove a neuron from layer ${l + 1}`;
      minus.dataset.layer = l; minus.dataset.act = "remove";
      plus.disabled = n >= maxN;
      minus.disabled = n <= 1;
      plus.onclick = () => { const ls = s.layers.slice(); ls[l] = Math.min(maxN, ls[l] + 1); changeSetting({ layers: ls }); };
      minus.onclick = () => { const ls = s.layers.slice(); ls[l] = Math.max(1, ls[l] - 1); changeSetting({ layers: ls }); };
      const lab = document.createElement("span");
      lab.textContent = `${n} neuron${n === 1 ? "" : "s"}`;
      ctl.append(plus, minus);
      const wrap = document.createElement("div");
      wrap.className = "layerlabel";
      wrap.style.left = x - 12 + "px"; wrap.style.top = "26px";
      wrap.appendChild(lab);
      const dead = document.createElement("div");
      dead.className = "deadfrac";
      dead.id = "dead-" + l;
      const col = layout.cols[l + 1];
      const last = col[col.length - 1];
      Object.assign(dead.style, { left: x - 10 + "px", top: last.y + last.size + 4 + "px" });
      ov.append(ctl, wrap, dead);
    });
    const maxL = lim.max_layers || 6;
    $("layer-add").disabled = s.layers.length >= maxL;
    $("layer-remove").disabled = s.layers.length === 0;
  }

  function drawNetwork() {
    const run = state.runs.A, f = run.frame;
    const ctx = $("netcanvas").getContext("2d");
    const { cols, W, H } = layout;
    ctx.clearRect(0, 0, W, H);
    const on = new Set(enabledFeatures());
    const inputs = cols[0].filter((nd) => on.has(nd.name));
    // links: weights[l][i][j] from node i of column l to node j of column l+1 (Keras layout)
    const weights = f && f.weights;
    const colsIn = [inputs, ...cols.slice(1)];
    const outNode = { x: W - 24, y: TOP + 4, size: 12 };
    colsIn.push([outNode]);
    if (weights) {
      for (let l = 0; l < colsIn.length - 1 && l < weights.length; l++) {
        const a = colsIn[l], b = colsIn[l + 1], w = weights[l];
        let max = 1e-12;
        for (const row of w) for (const v of row) max = Math.max(max, Math.abs(v));
        for (let i = 0; i < a.length && i < w.length; i++) {
          for (let j = 0; j < b.length && j < w[i].length; j++) {
            const v = w[i][j];
            ctx.strokeStyle = v >= 0 ? "rgba(8,119,189,0.75)" : "rgba(245,147,34,0.8)";
            ctx.lineWidth = Math.max(0.4, Math.min(6, Math.abs(v) / max * 6));
            const x0 = a[i].x + a[i].size, y0 = a[i].y + a[i].size / 2;
            const x1 = b[j].x, y1 = b[j].y + b[j].size / 2;
            ctx.beginPath();
            ctx.moveTo(x0, y0);
            ctx.bezierCurveTo((x0 + x1) / 2, y0, (x0 + x1) / 2, y1, x1, y1);
            ctx.stroke();
          }
        }
      }
    }
    // input features: computed here from the input plane, the same for every frame
    cols[0].forEach((nd) => {
      const g = featureGrid(nd.name);
      ctx.globalAlpha = on.has(nd.name) ? 1 : 0.25;
      if (!g || !drawGrid(ctx, g, nd.x, nd.y, nd.size, nd.size)) {
        ctx.fillStyle = "#eee"; ctx.fillRect(nd.x, nd.y, nd.size, nd.size);
      }
      ctx.globalAlpha = 1;
      ctx.strokeStyle = on.has(nd.name) ? "#333" : "#bbb";
      ctx.lineWidth = 1;
      ctx.strokeRect(nd.x + 0.5, nd.y + 0.5, nd.size - 1, nd.size - 1);
    });
    const neurons = f && f.neurons;
    cols.slice(1).forEach((col, l) => {
      const layerN = neurons && neurons[l];
      col.forEach((nd, i) => {
        const cell = layerN && layerN[i];
        const dead = !!(cell && cell.dead);
        let drawn = false;
        if (state.heatmaps && cell) drawn = drawGrid(ctx, cell, nd.x, nd.y, nd.size, nd.size, dead ? GREY : LUT);
        if (!drawn) { ctx.fillStyle = dead ? "#ccc" : "#f3f3f3"; ctx.fillRect(nd.x, nd.y, nd.size, nd.size); }
        ctx.strokeStyle = dead ? "#999" : "#333";
        ctx.setLineDash(dead ? [3, 2] : []);
        ctx.strokeRect(nd.x + 0.5, nd.y + 0.5, nd.size - 1, nd.size - 1);
        ctx.setLineDash([]);
        if (dead) {
          ctx.fillStyle = "#666"; ctx.font = "10px sans-serif";
          ctx.fillText("dead", nd.x + 8, nd.y + nd.size / 2 + 3);
        }
      });
      const el = $("dead-" + l);
      const df = f && f.dead_fraction ? f.dead_fraction[l] : null;
      if (el) {
        el.textContent = typeof df === "number" ? `dead ${(df * 100).toFixed(0)}%` : "";
        el.classList.toggle("some", df > 0);
      }
    });
    ctx.fillStyle = "#333";
    ctx.beginPath(); ctx.arc(outNode.x + 6, outNode.y + 6, 6, 0, 2 * Math.PI); ctx.fill();
    ctx.font = "10px sans-serif"; ctx.fillText("out", outNode.x - 2, outNode.y - 4);
  }

  // The feature heat maps depend only on the input domain: made once per domain.
  const featureCache = {};
  const FEATURE_FN = {
    "x1": (a) => a, "x2": (a, b) => b, "x1^2": (a) => a * a, "x2^2": (a, b) => b * b,
    "x1x2": (a, b) => a * b, "sin x1": (a) => Math.sin(a), "sin x2": (a, b) => Math.sin(b),
    "x": (a) => a, "x^2": (a) => a * a, "sin x": (a) => Math.sin(a),
  };
  function featureGrid(name) {
    const dom = domain();
    const key = name + "|" + dom.join(",");
    if (featureCache[key]) return featureCache[key];
    const fn = FEATURE_FN[name];
    if (!fn) return null;
    const res = 24, vals = new Float64Array(res * res);
    let max = 1e-12;
    for (let r = 0; r < res; r++) {
      for (let c = 0; c < res; c++) {
        const a = dom[0] + (c + 0.5) / res * (dom[1] - dom[0]);
        const b = dom[3] - (r + 0.5) / res * (dom[3] - dom[2]);
        const v = fn(a, b);
        vals[r * res + c] = v;
        max = Math.max(max, Math.abs(v));
      }
    }
    const bytes = new Uint8Array(res * res);
    for (let i = 0; i < vals.length; i++) bytes[i] = Math.round((vals[i] / max + 1) / 2 * 255);
    const g = { res, _bytes: bytes, b64: "x" };
    featureCache[key] = g;
    return g;
  }
  function domain() {
    const d = state.data && state.data.domain;
    if (Array.isArray(d) && d.length === 4) return d;
    if (Array.isArray(d) && d.length === 2) return [d[0], d[1], d[0], d[1]];
    return [-6, 6, -6, 6];
  }

  // ------------------------------------------------------------------ the output
  function drawOutput(name) {
    const cv = $("output-" + name), ctx = cv.getContext("2d");
    const W = cv.width, H = cv.height;
    const f = state.runs[name].frame, data = state.data;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    if (!data) return;
    const showTest = $("show-test").checked;
    const dom = domain();
    const px = (x) => (x - dom[0]) / (dom[1] - dom[0]) * W;
    if (data.dims === 1) {
      // 1-D regression: the points and the fitted curve, y on the vertical axis
      const yr = data.y_range || [-1.5, 1.5];
      const py = (y) => H - (y - yr[0]) / (yr[1] - yr[0]) * H;
      ctx.strokeStyle = "#ddd"; ctx.beginPath(); ctx.moveTo(0, py(0)); ctx.lineTo(W, py(0)); ctx.stroke();
      const pts = (set, fill) => {
        ctx.fillStyle = fill;
        for (const p of set || []) { ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 2.2, 0, 7); ctx.fill(); }
      };
      pts(data.train, "rgba(8,119,189,0.7)");
      if (showTest) pts(data.test, "rgba(60,60,60,0.7)");
      const curve = f && f.curve;
      if (curve && curve.length > 1) {
        ctx.strokeStyle = "#f59322"; ctx.lineWidth = 2.5; ctx.beginPath();
        curve.forEach((y, i) => {
          const x = dom[0] + i / (curve.length - 1) * (dom[1] - dom[0]);
          if (i) ctx.lineTo(px(x), py(y)); else ctx.moveTo(px(x), py(y));
        });
        ctx.stroke(); ctx.lineWidth = 1;
      }
      return;
    }
    const py = (y) => (dom[3] - y) / (dom[3] - dom[2]) * H;
    if (f && f.output) drawGrid(ctx, f.output, 0, 0, W, H);
    const dots = (set, stroke) => {
      ctx.strokeStyle = stroke;
      for (const p of set || []) {
        ctx.fillStyle = colour(p[2]);
        ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 3, 0, 7); ctx.fill(); ctx.stroke();
      }
    };
    dots(data.train, "#fff");
    if (showTest) dots(data.test, "#000");
  }

  // ------------------------------------------------------------------ charts
  function drawLossChart() {
    const cv = $("losschart"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const series = [["A", "#777", "#000"], ["B", "#e9a6a6", "#c22"]];
    let max = 1e-12, maxStep = 1;
    for (const [n] of series) {
      if (n === "B" && !state.ab.on) continue;
      for (const p of state.runs[n].loss) {
        max = Math.max(max, p.train, Number.isFinite(p.test) ? p.test : 0);
        maxStep = Math.max(maxStep, p.step);
      }
    }
    const line = (pts, key, colr, dash) => {
      ctx.strokeStyle = colr; ctx.setLineDash(dash); ctx.lineWidth = 1.5; ctx.beginPath();
      let started = false;
      for (const p of pts) {
        const v = p[key];
        if (!Number.isFinite(v)) continue;
        const x = p.step / maxStep * (W - 4) + 2, y = H - 2 - Math.min(v / max, 1) * (H - 4);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      }
      ctx.stroke(); ctx.setLineDash([]);
    };
    for (const [n, trainC, testC] of series) {
      if (n === "B" && !state.ab.on) continue;
      const pts = state.runs[n].loss;
      line(pts, "test", testC, n === "B" ? [4, 2] : []);
      line(pts, "train", trainC, n === "B" ? [4, 2] : []);
    }
    if (state.ab.on) {
      ctx.font = "10px sans-serif";
      ctx.fillStyle = "#000"; ctx.fillText("A", W - 26, 10);
      ctx.fillStyle = "#c22"; ctx.fillText("B - -", W - 16, 10);
    }
  }
  const LAYER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
  function drawGradChart() {
    const cv = $("gradchart"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const g = state.runs.A.grads;
    if (!g.length) return;
    let lo = Infinity, hi = -Infinity;
    for (const row of g) for (const v of row) if (v > 0 && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!Number.isFinite(lo)) return;
    const l0 = Math.log10(lo), l1 = Math.max(Math.log10(hi), l0 + 1e-6);
    const nl = g[g.length - 1].length;
    for (let k = 0; k < nl; k++) {
      ctx.strokeStyle = LAYER_COLOURS[k % LAYER_COLOURS.length]; ctx.beginPath();
      g.forEach((row, i) => {
        const v = row[k];
        const y = H - 12 - (v > 0 ? (Math.log10(v) - l0) / (l1 - l0) : 0) * (H - 16);
        const x = i / Math.max(1, g.length - 1) * (W - 60);
        if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle; ctx.font = "10px sans-serif";
      ctx.fillText(k === nl - 1 ? "output" : `layer ${k + 1}`, W - 54, 10 + k * 11);
    }
    ctx.fillStyle = "#777";
    ctx.fillText(hi.toExponential(1), 2, 10);
    ctx.fillText(lo.toExponential(1), 2, H - 2);
  }
  function drawLegend() {
    const cv = $("legend"), ctx = cv.getContext("2d");
    const img = ctx.createImageData(cv.width, 1);
    for (let x = 0; x < cv.width; x++) {
      const k = Math.round(x / (cv.width - 1) * 255) * 4;
      img.data.set([LUT[k], LUT[k + 1], LUT[k + 2], 255], x * 4);
    }
    for (let y = 0; y < cv.height; y++) ctx.putImageData(img, 0, y);
  }

  // ------------------------------------------------------------------ drawing loop
  function fmtLoss(v) { return Number.isFinite(v) ? v.toFixed(3) : "-"; }
  function drawAll() {
    const t0 = performance.now();
    const f = state.runs.A.frame;
    $("epoch").textContent = f ? String(f.epoch).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",") : "000,000";
    $("steps").textContent = f ? f.step : 0;
    const sa = state.runs.A.stepsAt;
    if (sa.length > 5) {
      const a = sa[Math.max(0, sa.length - 20)], b = sa[sa.length - 1];
      const r = (b[1] - a[1]) / ((b[0] - a[0]) / 1000);
      $("rate").textContent = Number.isFinite(r) && r > 0 ? Math.round(r).toLocaleString("en") : "-";
    }
    $("train-loss").textContent = fmtLoss(f && f.train_loss);
    $("test-loss").textContent = fmtLoss(f && f.test_loss);
    drawNetwork();
    drawOutput("A");
    if (state.ab.on) drawOutput("B");
    drawLossChart();
    drawGradChart();
    const now = performance.now();
    stats.drawMs = now - t0;
    stats.framesDrawn++;
    if (!stats.firstDraw) stats.firstDraw = now;
    stats.lastDraw = now;
  }
  function tick() {
    stats.rafTicks++;
    if (state.dirty && layout) {
      state.dirty = false;
      drawAll();
      // The server sends the next frame when this one is drawn (flow control: no backlog).
      if (state.runs.A.frame && state.playing) send({ op: "ack" });
    }
    requestAnimationFrame(tick);
  }

  // ------------------------------------------------------------------ export
  function onExport(msg) {
    state.lastExport = msg;
    const box = $("downloads");
    if (msg.what === "code" && typeof msg.code === "string") {
      $("code").value = msg.code;
      const blob = new Blob([msg.code], { type: "text/x-python" });
      const a = $("code-download");
      if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
      a.href = URL.createObjectURL(blob);
      const d = $("codedialog");
      if (!d.open) d.showModal();
      return;
    }
    if (msg.url) {
      const a = document.createElement("a");
      a.href = msg.url;
      a.download = msg.filename || "";
      a.textContent = `${msg.what}: ${msg.filename || msg.url}`;
      a.className = "download";
      box.prepend(a);
      a.click();
    }
  }

  // ------------------------------------------------------------------ wiring
  function wire() {
    $("play").addEventListener("click", () => setPlaying(!state.playing));
    $("step").addEventListener("click", () => { setPlaying(false); send({ op: "step" }); });
    $("reset").addEventListener("click", () => { setPlaying(false); clearRun("A"); clearRun("B"); clearWarnings(); send({ op: "reset" }); });
    $("regenerate").addEventListener("click", () => { clearRun("A"); clearRun("B"); send({ op: "regenerate" }); });
    $("layer-add").addEventListener("click", () => {
      const lim = state.options.limits || {};
      if (state.setting.layers.length >= (lim.max_layers || 6)) return;
      changeSetting({ layers: state.setting.layers.concat([2]) });
    });
    $("layer-remove").addEventListener("click", () => changeSetting({ layers: state.setting.layers.slice(0, -1) }));
    $("heatmaps").addEventListener("change", (e) => {
      state.heatmaps = e.target.checked;
      send({ op: "heatmaps", on: state.heatmaps });
      state.dirty = true;
    });
    $("show-test").addEventListener("change", () => { state.dirty = true; });
    document.querySelectorAll("[data-export]").forEach((b) =>
      b.addEventListener("click", () => send({ op: "export", what: b.dataset.export })));
    $("code-copy").addEventListener("click", async () => {
      const t = $("code");
      try { await navigator.clipboard.writeText(t.value); } catch (e) { t.select(); document.execCommand("copy"); }
    });
    document.addEventListener("keydown", (e) => {
      const tag = (e.target && e.target.tagName) || "";
      if (/INPUT|SELECT|TEXTAREA|BUTTON/.test(tag) && e.key !== "ArrowRight") {
        if (e.key === " " && tag === "BUTTON") e.preventDefault(); else return;
      }
      if (/INPUT|SELECT|TEXTAREA/.test(tag)) return;
      if (e.key === " ") { e.preventDefault(); setPlaying(!state.playing); }
      else if (e.key === "ArrowRight") { e.preventDefault(); setPlaying(false); send({ op: "step" }); }
    });
    window.addEventListener("hashchange", () => {
      if (location.hash === state.hashOwn) return;
      const s = hashToSetting(location.hash, state.options.defaults);
      if (!s) return;
      setPlaying(false);
      state.setting = Object.assign({}, state.options.defaults, s);
      state.hashOwn = location.hash;
      renderControls();
      sendSetup();
    });
  }

  async function main() {
    let opts;
    try {
      const r = await fetch("api/options");
      if (!r.ok) throw new Error(`GET /api/options: HTTP ${r.status}`);
      opts = await r.json();
    } catch (e) {
      showError("Could not load the playground's options: " + e.message);
      return;
    }
    state.options = opts;
    const fromHash = hashToSetting(location.hash, opts.defaults);
    state.setting = Object.assign({}, opts.defaults, fromHash || {});
    if (!fromHash) writeHash(); else state.hashOwn = location.hash;
    buildControls();
    renderControls();
    drawLegend();
    wire();
    connect();
    requestAnimationFrame(tick);
  }
  main();
})();

// microgradnet playground: the page. It holds no model: the server trains, the page draws the
// frames it sends and sends the setting (see PROTOCOL.md beside the server's code).
"use strict";

(function () {
  // ------------------------------------------------------------------ state
  const state = {
    options: null,        // GET /api/options
    setting: null,        // run A's setting, mirrored in the URL hash
    ab: { on: false, full: null },  // run B: the fields that differ from A
    data: null,           // the last "data" message
    runs: { A: newRun(), B: newRun() },
    playing: false,
    serverPlaying: false, // the server's word: no frame of the last play will follow
    heatmaps: true,
    ws: null,
    dirty: false,         // a frame arrived that is not drawn yet
    hashOwn: "",          // the hash this page wrote last (not a user's edit)
    ackedSeq: -1,         // the last frame number acknowledged to the server
    paths: {},            // per run: null (the captured fast path) or why it trains eagerly
    errors: [],
    warnings: [],
    lastExport: null,
  };
  // Read by the browser tests and the frame-rate benchmark.
  const stats = { framesReceived: 0, framesDrawn: 0, drawMs: 0, rafTicks: 0,
    firstDraw: 0, lastDraw: 0, drawMsTotal: 0, messageMs: 0 };
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
  // A grid from the server: {res, lo, hi, b64}: res*res (2-D, row 0 at the top) or res (1-D)
  // bytes, value = lo + (hi - lo) * byte / 255.
  function decodeGrid(g) {
    if (!g || typeof g.b64 !== "string") return null;
    if (!g._bytes) g._bytes = b64bytes(g.b64);
    return g._bytes;
  }
  function gridValues(g) {
    const bytes = decodeGrid(g);
    if (!bytes) return null;
    const lo = g.lo || 0, span = (g.hi || 0) - lo, out = new Float64Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) out[i] = lo + span * bytes[i] / 255;
    return out;
  }
  // The colours of a grid's 256 byte values when `scale` maps a value to [-1, 1].
  const lutBuf = new Uint8ClampedArray(256 * 4);
  function gridLut(g, scale, base) {
    const lo = g.lo || 0, span = (g.hi || 0) - lo;
    for (let b = 0; b < 256; b++) {
      const t = Math.max(-1, Math.min(1, scale(lo + span * b / 255)));
      const k = Math.round((t + 1) / 2 * 255) * 4;
      lutBuf[b * 4] = base[k]; lutBuf[b * 4 + 1] = base[k + 1]; lutBuf[b * 4 + 2] = base[k + 2];
      lutBuf[b * 4 + 3] = 255;
    }
    return lutBuf;
  }
  // Neurons: 0 is white, the sign is the hue, the grid's largest |value| full colour.
  function symScale(g) {
    const m = Math.max(Math.abs(g.lo || 0), Math.abs(g.hi || 0)) || 1;
    return (v) => v / m;
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
  // A 2-D grid as a heat map in the box (x, y, w, h); scale: value -> [-1, 1].
  function drawGrid(ctx, g, x, y, w, h, scale, base) {
    const bytes = decodeGrid(g);
    if (!bytes || bytes.length !== g.res * g.res) return false;
    const lut = g.lut || gridLut(g, scale || symScale(g), base || LUT);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(gridCanvas(bytes, g.res, lut), x, y, w, h);
    return true;
  }
  // A 1-D grid (a curve over the domain) as a line in the box, its own range filling it.
  function drawCurve(ctx, g, x, y, w, h, dead) {
    const v = gridValues(g);
    if (!v || v.length < 2) return false;
    const m = Math.max(Math.abs(g.lo || 0), Math.abs(g.hi || 0)) || 1;
    ctx.fillStyle = dead ? "#ddd" : "#fafafa";
    ctx.fillRect(x, y, w, h);
    ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x, y + h / 2); ctx.lineTo(x + w, y + h / 2); ctx.stroke();
    ctx.strokeStyle = dead ? "#888" : "#0877bd"; ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < v.length; i++) {
      const px = x + i / (v.length - 1) * w, py = y + h / 2 - v[i] / m * (h / 2 - 2);
      if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    }
    ctx.stroke(); ctx.lineWidth = 1;
    return true;
  }

  // ------------------------------------------------------------------ setting <-> URL hash
  // Every key of the setting, in the hash as key=value (lists comma-joined), then run B's
  // differing fields as b.key=value. Types come from the server's default setting, so a
  // link is read back with the types the server expects.
  function pairs(s, prefix) {
    return Object.keys(s).map((k) => encodeURIComponent(prefix + k) + "=" +
      encodeURIComponent(Array.isArray(s[k]) ? s[k].join(",") : s[k]));
  }
  function settingToHash(s, b) {
    return "#" + pairs(s, "").concat(b ? pairs(b, "b.") : []).join("&");
  }
  function parseValue(raw, d) {
    if (Array.isArray(d)) {
      const items = raw === "" ? [] : raw.split(",");
      const numeric = d.length ? typeof d[0] === "number" : /^-?[\d.]+$/.test(items[0] || "");
      return numeric ? items.map((v) => (v.trim() === "" ? NaN : Number(v))) : items;
    }
    if (typeof d === "number") return raw.trim() === "" ? NaN : Number(raw);
    if (typeof d === "boolean") return raw === "true" || raw === "1";
    return raw;
  }
  // {setting, setting_b} from a hash (null when it holds nothing).
  function hashToSetting(hash, defaults) {
    const h = hash.replace(/^#/, "");
    if (!h) return null;
    const setting = {};
    let b = null;
    for (const part of h.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      let k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      const raw = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
      let into = setting;
      if (k.startsWith("b.")) { k = k.slice(2); b = b || {}; into = b; }
      into[k] = parseValue(raw, defaults ? defaults[k] : undefined);
    }
    return { setting, setting_b: b };
  }
  function writeHash() {
    const h = settingToHash(state.setting, state.ab.on ? state.ab.full : null);
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
    ws.onopen = () => {
      if (!state.heatmaps) send({ op: "heatmaps", on: false });
      sendSetup();
    };
    ws.onmessage = (ev) => {
      const t0 = performance.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { showError("The server sent a message that is not JSON."); return; }
      onMessage(msg);
      stats.messageMs += performance.now() - t0;
    };
    ws.onclose = () => {
      setPlaying(false, true);
      showError("The connection to the server closed. Reload the page when it runs again.");
    };
  }
  function send(msg) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
  }
  // The setting (and run B's differing fields when comparing) to the server, which answers
  // with "setup" (the checked setting), "data" and a first frame, or with an error.
  function sendSetup(preset) {
    const msg = { op: "setup", setting: state.setting };
    if (preset) msg.preset = preset;
    else if (state.ab.on) msg.setting_b = settingB();
    send(msg);
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "setup": onSetup(msg); break;
      case "data": state.data = msg; state.dirty = true; break;
      case "frame": onFrame(msg); break;
      case "state":
        if ("playing" in msg) { state.serverPlaying = !!msg.playing; setPlaying(!!msg.playing, true); }
        break;
      case "export": onExport(msg); break;
      case "error": showError(msg.message || "error", msg.field); break;
      default: break;
    }
  }
  // The server's checked setting becomes the page's (canonical order of features, numbers
  // as the server holds them), so the URL is what the server trains.
  function onSetup(msg) {
    clearErrors();
    clearRun("A"); clearRun("B");
    clearWarnings();
    state.setting = msg.setting;
    state.ab.on = !!msg.setting_b;
    state.ab.full = msg.setting_b || null;
    state.paths = msg.paths || {};
    const bKeys = Object.keys(state.ab.full || {});
    if (bKeys.length === 1 && abSpec(bKeys[0])) {  // show the compared field in the A/B box
      $("ab-field").value = bKeys[0];
      abValueInput(state.ab.full[bKeys[0]]);
    }
    writeHash();
    renderControls();
    renderAB();
  }

  function onFrame(f) {
    stats.framesReceived++;
    const run = state.runs[f.run === "B" ? "B" : "A"];
    run.frame = f;
    const last = run.loss[run.loss.length - 1];
    if (!last || last.step !== f.step) {
      run.loss.push({ step: f.step, train: num(f.train_loss), test: num(f.test_loss) });
      if (f.grad_norms) run.grads.push(f.grad_norms.map(num));
      run.stepsAt.push([performance.now(), f.step]);
      if (run.loss.length > 2000) thin(run);
    }
    if (f.warnings && f.warnings.length) addWarnings(f.warnings, f.run);
    state.dirty = true;
  }
  function num(v) { return typeof v === "number" ? v : NaN; }  // JSON null: not finite
  function thin(run) {  // keep the charts' cost bounded on long runs: every other point
    run.loss = run.loss.filter((_, i) => i % 2 === 0);
    run.grads = run.grads.filter((_, i) => i % 2 === 0);
    run.stepsAt = run.stepsAt.slice(-50);
  }
  function clearRun(name) { state.runs[name] = newRun(); state.dirty = true; }

  // ------------------------------------------------------------------ errors and warnings
  // field: the setting's key the server names ("setting_b.<key>": run B's, in the A/B box).
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
    if (typeof field === "string") {
      const el = field.startsWith("setting_b.") ? $("ab-value")
        : document.querySelector(`[data-key="${CSS.escape(field)}"]`);
      if (el) (el.closest(".field") || el).classList.add("bad");
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
  function changeSetting(patch) {
    Object.assign(state.setting, patch);
    $("preset").value = "";
    writeHash();
    renderControls();
    sendSetup();
  }

  // Hyper-parameters in the top bar: [key, label, kind, choices key in options].
  const HYPER = [
    ["activation", "Activation", "select", "activations"],
    ["output_activation", "Output", "select", "output_activations"],
    ["initializer", "Initializer", "select", "initializers"],
    ["optimizer", "Optimizer", "select", "optimizers"],
    ["learning_rate", "Learning rate", "number", null],
    ["momentum", "Momentum", "number", null],
    ["regularization", "Regularization", "select", "regularizations"],
    ["regularization_rate", "Reg. rate", "number", null],
    ["batch_size", "Batch size", "number", null],
    ["seed", "Seed", "number", null],
    ["steps_per_frame", "Steps/frame", "number", null],
  ];
  const DATAPARAMS = [
    ["noise", "Noise", 0, 1, 0.01],
    ["train_ratio", "Training data ratio", 0.1, 0.9, 0.05],
  ];
  const DATANUMBERS = [["points", "Points"], ["data_seed", "Data seed"]];

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
    for (const [key, label] of DATANUMBERS) {
      if (!(key in state.setting)) continue;
      const el = makeInput(key, "number");
      el.addEventListener("change", () => changeSetting({ [key]: readInput(el, "number") }));
      dp.appendChild(field(key, label, el));
    }
    const ds = $("datasets");
    ds.textContent = "";
    for (const name of Object.keys(o.datasets)) {
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
      // The server applies the preset (and its A/B partner) and answers with the setting.
      state.setting = Object.assign({}, p.setting);
      sendSetup(ps.value);
    });
    buildAB();
  }

  function renderControls() {
    const s = state.setting;
    for (const [key, , kind] of HYPER) {
      const el = $("ctl-" + key);
      if (el) el.value = kind === "select" ? s[key] : (Number.isFinite(s[key]) ? s[key] : "");
    }
    for (const [key] of DATANUMBERS) {
      const el = $("ctl-" + key);
      if (el) el.value = Number.isFinite(s[key]) ? s[key] : "";
    }
    for (const [key] of DATAPARAMS) {
      const el = $("ctl-" + key);
      if (el) { el.value = s[key]; el.previousSibling.querySelector(".val").textContent = " " + s[key]; }
    }
    document.querySelectorAll("#datasets button").forEach((b) =>
      b.classList.toggle("selected", b.dataset.dataset === s.dataset));
    $("layer-count").textContent = s.layers.length;
    $("layer-noun").textContent = s.layers.length === 1 ? "hidden layer" : "hidden layers";
    $("legend-box").hidden = dims() === 1;
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
    sel.value = "activation";
    sel.addEventListener("change", () => abValueInput());
    // The server answers with "setup" (setting_b set or null): that switches the view.
    $("ab-toggle").addEventListener("click", () => {
      setPlaying(false);
      if (state.ab.on) send({ op: "ab_off" });
      else send({ op: "ab", setting_b: { [sel.value]: readAB() } });
    });
    abValueInput();
  }
  function abSpec(key) { return AB_FIELDS.find((f) => f[0] === key); }
  function abValueInput(value) {
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
    if (value !== undefined) el.value = Array.isArray(value) ? value.join(",") : value;
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
  function settingB() { return Object.assign({}, state.ab.full || {}); }
  function renderAB() {
    $("ab-toggle").classList.toggle("on", state.ab.on);
    $("ab-toggle").textContent = state.ab.on ? "Stop comparing" : "Compare";
    $("fig-B").hidden = !state.ab.on;
    $("export-run").hidden = !state.ab.on;
    let diff = "";
    if (state.ab.on) {
      const b = settingB();
      diff = Object.keys(b).map((k) => `${k}=${Array.isArray(b[k]) ? b[k].join(",") : b[k]}`)
        .join(", ");
    }
    $("b-diff").textContent = diff ? `(${diff})` : "";
    state.dirty = true;
  }

  // ------------------------------------------------------------------ the network diagram
  // Columns: the inputs (every feature of 2-D data, the chosen ones bright; x for 1-D data),
  // each hidden layer, the output unit. A column wider than 8 units (a preset's 1x60) gets
  // smaller boxes so that it fits the height of 8.
  const NODE = 40, FEAT = 34, TOP = 58, PITCH = NODE + 12, LEFT = 60;
  let layout = null, COLW = 104;
  function dims() {
    const d = state.options.datasets[state.setting.dataset];
    return d ? d.dims : 2;
  }
  // The hidden layers as drawable: a setting the server refused (1,000 layers, -3 units) is
  // drawn within the server's limits while its error shows.
  function drawnLayers() {
    const lim = state.options.limits || {};
    const ls = Array.isArray(state.setting.layers) ? state.setting.layers : [];
    return ls.slice(0, lim.max_layers || 8).map((n) =>
      (Number.isInteger(n) ? Math.max(0, Math.min(n, lim.max_units || 64)) : 0));
  }
  function layoutNetwork() {
    const inputs = dims() === 1 ? ["x"] : (state.options.features || []);
    const widths = [...drawnLayers(), 1];
    // Columns closer together, and smaller boxes, when the network would be wider than its
    // column of the page.
    const avail = $("network").clientWidth || 600;
    COLW = Math.max(30, Math.min(104, (avail - LEFT - 10) / (widths.length + 0.5)));
    const node = Math.min(NODE, Math.max(16, Math.floor(COLW * 0.6)));
    const rows = Math.max(inputs.length, 8);
    const H = TOP + rows * PITCH + 24;
    const cols = [inputs.map((name, i) => ({ x: LEFT, y: TOP + i * (FEAT + 12), size: FEAT, name }))];
    widths.forEach((n, l) => {
      const pitch = Math.min(PITCH, rows * PITCH / n);
      const size = pitch === PITCH ? node : Math.max(2, Math.min(node, pitch * 0.8));
      const col = [];
      for (let i = 0; i < n; i++) col.push({ x: LEFT + (l + 1) * COLW, y: TOP + i * pitch, size });
      cols.push(col);
    });
    const W = LEFT + widths.length * COLW + node + 10;
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
    const s = state.setting, lim = state.options.limits || {};
    const maxN = lim.editor_units || 8, maxL = lim.editor_layers || 6;
    const feats = state.options.features || [];
    const on = new Set(s.features || []);
    layout.cols[0].forEach((nd) => {
      if (dims() === 2) {
        const box = document.createElement("div");
        box.className = "featbox";
        box.dataset.feature = nd.name;
        box.title = (on.has(nd.name) ? "Stop using " : "Use ") + nd.name;
        Object.assign(box.style, { left: nd.x + "px", top: nd.y + "px", width: nd.size + "px", height: nd.size + "px" });
        box.addEventListener("click", () => {
          const next = feats.filter((f) => (f === nd.name ? !on.has(f) : on.has(f)));
          changeSetting({ features: next });
        });
        ov.append(box);
      }
      const lab = document.createElement("div");
      lab.className = "featlabel";
      lab.textContent = nd.name;
      Object.assign(lab.style, { left: nd.x - 50 + "px", top: nd.y + nd.size / 2 - 7 + "px" });
      ov.append(lab);
    });
    const nl = layout.cols.length - 2;
    layout.cols.slice(1).forEach((col, l) => {
      const x = LEFT + (l + 1) * COLW;
      const n = col.length;
      if (l < nl) {
        const ctl = document.createElement("div");
        ctl.className = "layerctl";
        Object.assign(ctl.style, { left: x - 4 + "px", top: "4px" });
        const plus = document.createElement("button");
        plus.className = "pm"; plus.textContent = "+"; plus.title = `Add a neuron to layer ${l + 1}`;
        plus.id = `layer-${l}-add`;
        const minus = document.createElement("button");
        minus.className = "pm"; minus.innerHTML = "&minus;"; minus.title = `Remove a neuron from layer ${l + 1}`;
        minus.id = `layer-${l}-remove`;
        plus.disabled = n >= maxN;
        minus.disabled = n <= 1;
        plus.onclick = () => { const ls = s.layers.slice(); ls[l] = Math.min(maxN, ls[l] + 1); changeSetting({ layers: ls }); };
        minus.onclick = () => { const ls = s.layers.slice(); ls[l] = Math.max(1, ls[l] - 1); changeSetting({ layers: ls }); };
        ctl.append(plus, minus);
        ov.append(ctl);
      }
      const lab = document.createElement("div");
      lab.className = "layerlabel";
      lab.textContent = l >= nl ? "output" : COLW < 90 ? String(n) : `${n} neuron${n === 1 ? "" : "s"}`;
      lab.title = l < nl ? `${n} neuron${n === 1 ? "" : "s"}` : "the output unit";
      Object.assign(lab.style, { left: x - 4 + "px", top: "28px" });
      const dead = document.createElement("div");
      dead.className = "deadfrac";
      dead.id = "dead-" + l;
      const last = col[col.length - 1] || { y: TOP, size: 0 };
      Object.assign(dead.style, { left: x - 10 + "px", top: last.y + last.size + 4 + "px" });
      ov.append(lab, dead);
    });
    $("layer-add").disabled = s.layers.length >= maxL;
    $("layer-remove").disabled = s.layers.length === 0;
  }

  function drawNetwork() {
    const f = state.runs.A.frame;
    const ctx = $("netcanvas").getContext("2d");
    const { cols, W, H } = layout;
    ctx.clearRect(0, 0, W, H);
    const oneD = dims() === 1;
    const on = new Set(oneD ? ["x"] : state.setting.features || []);
    const inputs = cols[0].filter((nd) => on.has(nd.name));
    // Links: kernels[l][i][j] joins unit i of column l to unit j of column l + 1 (Keras
    // layout); width by |w| relative to the layer's largest, blue positive, orange negative.
    const kernels = f && f.weights && f.weights.kernels;
    const linked = [inputs, ...cols.slice(1)];
    if (kernels) {
      // One path per (sign, width step): a few strokes per frame instead of one per link.
      const paths = new Map();
      for (let l = 0; l < linked.length - 1 && l < kernels.length; l++) {
        const a = linked[l], b = linked[l + 1], w = kernels[l];
        let max = 1e-12;
        for (const row of w) for (const v of row) max = Math.max(max, Math.abs(v));
        for (let i = 0; i < a.length && i < w.length; i++) {
          for (let j = 0; j < b.length && j < w[i].length; j++) {
            const v = w[i][j];
            const key = (v >= 0 ? 1 : -1) * (1 + Math.round(Math.abs(v) / max * 10));
            let path = paths.get(key);
            if (!path) paths.set(key, (path = new Path2D()));
            const x0 = a[i].x + a[i].size, y0 = a[i].y + a[i].size / 2;
            const x1 = b[j].x, y1 = b[j].y + b[j].size / 2;
            path.moveTo(x0, y0);
            path.bezierCurveTo((x0 + x1) / 2, y0, (x0 + x1) / 2, y1, x1, y1);
          }
        }
      }
      for (const [key, path] of paths) {
        ctx.strokeStyle = key > 0 ? "rgba(8,119,189,0.7)" : "rgba(245,147,34,0.75)";
        ctx.lineWidth = Math.max(0.3, (Math.abs(key) - 1) / 10 * 5);
        ctx.stroke(path);
      }
    }
    // Inputs: computed here from the input plane (the same every frame).
    cols[0].forEach((nd) => {
      ctx.globalAlpha = on.has(nd.name) ? 1 : 0.25;
      const g = featureGrid(nd.name);
      const drawn = g && (oneD ? drawCurve(ctx, g, nd.x, nd.y, nd.size, nd.size, false)
        : drawGrid(ctx, g, nd.x, nd.y, nd.size, nd.size));
      if (!drawn) { ctx.fillStyle = "#eee"; ctx.fillRect(nd.x, nd.y, nd.size, nd.size); }
      ctx.globalAlpha = 1;
      ctx.strokeStyle = on.has(nd.name) ? "#333" : "#bbb";
      ctx.lineWidth = 1;
      ctx.strokeRect(nd.x + 0.5, nd.y + 0.5, nd.size - 1, nd.size - 1);
    });
    // Units: the heat map of each one's output over the input plane (a curve over x for 1-D
    // data); a dead unit greyed and dashed, its layer's dead fraction below the column.
    const neurons = state.heatmaps && f && f.neurons;
    cols.slice(1).forEach((col, l) => {
      const grids = neurons && neurons[l];
      const dead = f && f.dead && f.dead[l];
      col.forEach((nd, i) => {
        const g = grids && grids[i];
        const isDead = !!(dead && dead[i]);
        let drawn = false;
        if (g) {
          drawn = oneD ? drawCurve(ctx, g, nd.x, nd.y, nd.size, nd.size, isDead)
            : drawGrid(ctx, g, nd.x, nd.y, nd.size, nd.size, null, isDead ? GREY : LUT);
        }
        if (!drawn) { ctx.fillStyle = isDead ? "#ccc" : "#f3f3f3"; ctx.fillRect(nd.x, nd.y, nd.size, nd.size); }
        if (nd.size >= 8) {
          ctx.strokeStyle = isDead ? "#999" : "#333";
          ctx.setLineDash(isDead ? [3, 2] : []);
          ctx.strokeRect(nd.x + 0.5, nd.y + 0.5, nd.size - 1, nd.size - 1);
          ctx.setLineDash([]);
        }
        if (isDead && nd.size >= 30) {
          ctx.fillStyle = "#555"; ctx.font = "10px sans-serif";
          ctx.fillText("dead", nd.x + 8, nd.y + nd.size / 2 + 3);
        }
      });
      const el = $("dead-" + l);
      const df = f && f.dead_fraction ? f.dead_fraction[l] : null;
      if (el) {
        const pct = `${Math.round(df * 100)}%`;
        el.textContent = typeof df !== "number" ? "" : COLW < 70 ? pct : `dead ${pct}`;
        el.title = "dead units in this layer";
        el.classList.toggle("some", df > 0);
      }
    });
  }

  // The inputs' heat maps depend only on the domain: made once per feature and domain.
  const featureCache = {};
  const FEATURE_FN = {
    "x1": (a) => a, "x2": (a, b) => b, "x1^2": (a) => a * a, "x2^2": (a, b) => b * b,
    "x1x2": (a, b) => a * b, "sin x1": (a) => Math.sin(a), "sin x2": (a, b) => Math.sin(b),
    "x": (a) => a,
  };
  function featureGrid(name) {
    const [lo, hi] = domain(), oneD = dims() === 1;
    const key = `${name}|${lo}|${hi}|${oneD}`;
    if (featureCache[key]) return featureCache[key];
    const fn = FEATURE_FN[name];
    if (!fn) return null;
    const res = oneD ? 64 : 24, n = oneD ? res : res * res, vals = new Float64Array(n);
    let max = 1e-12;
    for (let i = 0; i < n; i++) {
      const c = i % res, r = Math.floor(i / res);
      // as the server's grids: columns from x1 = lo, row 0 at x2 = hi
      const v = fn(lo + c / (res - 1) * (hi - lo), hi - r / (res - 1) * (hi - lo));
      vals[i] = v;
      max = Math.max(max, Math.abs(v));
    }
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = Math.round((vals[i] / max + 1) / 2 * 255);
    const g = { res, lo: -max, hi: max, b64: "", _bytes: bytes };
    featureCache[key] = g;
    return g;
  }
  // The drawn range of x (and of x1, x2): [lo, hi].
  function domain() {
    const d = state.data && state.data.domain;
    if (Array.isArray(d) && d.length === 2) return d;
    const spec = state.options.datasets[state.setting.dataset];
    return spec ? spec.domain : [-6, 6];
  }

  // ------------------------------------------------------------------ the output
  function drawOutput(name) {
    const cv = $("output-" + name), ctx = cv.getContext("2d");
    const W = cv.width, H = cv.height;
    const f = state.runs[name].frame, data = state.data;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    if (!data) return;
    const showTest = $("show-test").checked;
    const [lo, hi] = domain();
    const px = (x) => (x - lo) / (hi - lo) * W;
    if (data.dims === 1) {
      // 1-D regression, as the seeds plot it: the points and the fitted curve
      const yr = data.y_range || [-1, 1];
      const pad = (yr[1] - yr[0]) * 0.15 || 1;
      const y0 = yr[0] - pad, y1 = yr[1] + pad;
      const py = (y) => H - (y - y0) / (y1 - y0) * H;
      ctx.strokeStyle = "#ddd"; ctx.beginPath(); ctx.moveTo(0, py(0)); ctx.lineTo(W, py(0)); ctx.stroke();
      ctx.strokeStyle = "#bbb"; ctx.strokeRect(0.5, 0.5, W - 1, H - 1);
      ctx.fillStyle = "#777"; ctx.font = "10px sans-serif";
      ctx.fillText(`x ${lo} .. ${hi}`, 4, H - 4);
      ctx.drawImage(pointsLayer(W, H, showTest, (c) => {
        const pts = (set, fill) => {
          c.fillStyle = fill;
          for (const p of set || []) { c.beginPath(); c.arc(px(p[0]), py(p[1]), 2.2, 0, 7); c.fill(); }
        };
        pts(data.train, "rgba(8,119,189,0.65)");
        if (showTest) pts(data.test, "rgba(60,60,60,0.65)");
      }), 0, 0);
      const curve = f && f.output && gridValues(f.output);
      if (curve && curve.length > 1) {
        ctx.save();
        ctx.beginPath(); ctx.rect(0, 0, W, H); ctx.clip();
        ctx.strokeStyle = "#f59322"; ctx.lineWidth = 2.5; ctx.beginPath();
        for (let i = 0; i < curve.length; i++) {
          const x = i / (curve.length - 1) * W, y = py(curve[i]);
          if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        }
        ctx.stroke();
        ctx.restore();
      }
      return;
    }
    const py = (y) => (hi - y) / (hi - lo) * H;
    // classification: probability 0..1 -> -1..1; regression: the targets' largest |y| -> 1
    let scale;
    if (data.problem === "classification") scale = (v) => 2 * v - 1;
    else {
      const m = Math.max(...(data.y_range || [1]).map(Math.abs)) || 1;
      scale = (v) => v / m;
    }
    if (f && f.output) drawGrid(ctx, f.output, 0, 0, W, H, scale);
    ctx.drawImage(pointsLayer(W, H, showTest, (c) => {
      const dots = (set, stroke) => {
        c.strokeStyle = stroke;
        for (const p of set || []) {
          c.fillStyle = colour(scale(p[2]));
          c.beginPath(); c.arc(px(p[0]), py(p[1]), 3, 0, 7); c.fill(); c.stroke();
        }
      };
      dots(data.train, "#fff");
      if (showTest) dots(data.test, "#000");
    }), 0, 0);
  }
  // The points change only with the data: drawn once on a layer of their own, which each
  // frame puts over the output (the same layer serves runs A and B).
  let pointsCache = null;
  function pointsLayer(W, H, showTest, draw) {
    const key = [state.data, W, H, showTest];
    if (pointsCache && pointsCache.key.every((v, i) => v === key[i])) return pointsCache.canvas;
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    draw(canvas.getContext("2d"));
    pointsCache = { key, canvas };
    return canvas;
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
    ctx.fillStyle = "#777"; ctx.font = "10px sans-serif";
    if (max > 1e-12) ctx.fillText(max.toPrecision(2), 2, 10);
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
    if (!Number.isFinite(lo)) {
      ctx.fillStyle = "#900"; ctx.font = "12px sans-serif";
      ctx.fillText("every layer's gradient is 0: nothing can change", 8, H / 2);
      return;
    }
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
    const why = state.paths.A;
    $("path").textContent = !f ? "" : why ? "eager path" : "captured fast path";
    $("path").title = why || "fit's step runs as one captured plan in C";
    $("test-loss").textContent = fmtLoss(f && f.test_loss);
    drawNetwork();
    drawOutput("A");
    if (state.ab.on) drawOutput("B");
    drawLossChart();
    drawGradChart();
    const now = performance.now();
    stats.drawMs = now - t0;
    stats.drawMsTotal += now - t0;
    stats.framesDrawn++;
    if (!stats.firstDraw) stats.firstDraw = now;
    stats.lastDraw = now;
  }
  function tick() {
    stats.rafTicks++;
    if (state.dirty && layout) {
      state.dirty = false;
      drawAll();
      // Flow control: the server keeps at most a few frames ahead of the last one drawn.
      let seq = -1;
      for (const r of Object.values(state.runs)) if (r.frame && r.frame.seq > seq) seq = r.frame.seq;
      if (seq > state.ackedSeq) { state.ackedSeq = seq; send({ op: "ack", seq }); }
    }
    requestAnimationFrame(tick);
  }

  // ------------------------------------------------------------------ export
  function onExport(msg) {
    state.lastExport = msg;
    const box = $("downloads");
    if (msg.what === "code" && typeof msg.text === "string") {
      $("code").value = msg.text;
      $("code-download").download = msg.filename || "playground.py";
      const blob = new Blob([msg.text], { type: "text/x-python" });
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
      if (state.setting.layers.length >= (lim.editor_layers || 6)) return;
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
      b.addEventListener("click", () => send({ op: "export", what: b.dataset.export,
        run: state.ab.on ? $("export-run").value : "A" })));
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
    window.addEventListener("resize", () => { if (state.setting) layoutNetwork(); });
    window.addEventListener("hashchange", () => {
      if (location.hash === state.hashOwn) return;
      const h = hashToSetting(location.hash, state.options.defaults);
      if (!h) return;
      setPlaying(false);
      applyHash(h);
      sendSetup();
    });
  }
  function applyHash(h) {
    state.setting = Object.assign({}, state.options.defaults, h.setting);
    state.ab.on = !!h.setting_b;
    state.ab.full = h.setting_b;
    state.hashOwn = location.hash;
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
    const h = hashToSetting(location.hash, opts.defaults);
    if (h) applyHash(h);
    else { state.setting = Object.assign({}, opts.defaults); writeHash(); }
    buildControls();
    renderControls();
    drawLegend();
    wire();
    connect();
    requestAnimationFrame(tick);
  }
  main();
})();

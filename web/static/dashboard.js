// The ops dashboard: one server-sent-event stream, a snapshot a second, drawn with Chart.js
// (vendored under /static/vendor/chartjs). Every text that comes from the server goes
// through textContent or onto a canvas: episode titles are user data, never markup.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const MAX_GANTT_SEGMENTS = 30;

  const state = {
    seq: 0, ticks: 0, t: 0, snapshot: null, pricing: null,
    spans: {},          // episode id -> span rows [stage, segment, tier, worker, queued, started, finished, note]
    history: [],        // [{t, buffered: {episode: seconds}}]
    selected: null, userSelected: false, ganttKey: "",
  };
  const charts = {};
  window.streamwiseDashboard = { state, charts };

  // ------------------------------------------------------------------ look
  const css = getComputedStyle(document.documentElement);
  const MUTED = css.getPropertyValue("--muted").trim() || "#8e97b0";
  Chart.defaults.color = MUTED;
  Chart.defaults.borderColor = "#242b42";
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.font.size = 11;
  Chart.defaults.animation = false;        // updates every second: drawing must stay cheap
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 10;
  Chart.defaults.plugins.legend.labels.boxHeight = 10;

  const PALETTE = ["#5b8def", "#3ecf8e", "#ffb454", "#ff6b9a", "#a78bfa", "#2dd4bf", "#f97316", "#e879f9"];
  const TIER_COLORS = { "240p": "#5b8def", "360p": "#3ecf8e", "480p": "#ffb454", "720p": "#ff6b9a", "1080p": "#e879f9" };
  const UNTIERED = { script: "#a78bfa", speech: "#94a3b8", video: "#475569" };
  const tierColor = (tier) => {
    if (!TIER_COLORS[tier]) TIER_COLORS[tier] = PALETTE[Object.keys(TIER_COLORS).length % PALETTE.length];
    return TIER_COLORS[tier];
  };
  const tierOrder = (t) => parseInt(t, 10) || 0;
  const short = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
  const fmt = (v, digits = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  // Dollars with two significant digits below a cent ($0.00037), cents above.
  const money = (v) => (v === null || v === undefined ? "–" : v >= 0.01 ? "$" + v.toFixed(2) : v > 0 ? "$" + Number(v.toPrecision(2)).toFixed(Math.min(12, 1 - Math.floor(Math.log10(v)))) : "$0");

  function make(id, config) {
    charts[id] = new Chart($("c-" + id), config);
    return charts[id];
  }
  const grid = { color: "#232a40" };

  // ------------------------------------------------------------------ charts
  make("gantt", {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      indexAxis: "y",
      parsing: { xAxisKey: "x", yAxisKey: "y" },
      scales: {
        x: { type: "linear", min: 0, grid, title: { display: true, text: "seconds since the episode was created" } },
        y: { type: "category", grid: { display: false }, ticks: { autoSkip: true, maxTicksLimit: 24 } },
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            title: (items) => items[0].raw.label,
            label: (item) => item.raw.detail,
          },
        },
      },
    },
  });

  make("buffer", {
    type: "line",
    data: { datasets: [] },
    options: {
      parsing: false,
      normalized: true,
      scales: {
        x: { type: "linear", grid, title: { display: true, text: "seconds ago" }, ticks: { callback: (v) => Math.round(v) } },
        y: { type: "linear", min: 0, grid, title: { display: true, text: "buffered s" } },
      },
      elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0 } },
      plugins: { legend: { position: "bottom" } },
    },
  });

  const histogramConfig = () => ({
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      scales: { x: { grid: { display: false }, title: { display: true, text: "seconds" } }, y: { beginAtZero: true, grid, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  make("ttff", histogramConfig());
  make("speech", histogramConfig());

  make("stages", {
    type: "bar",
    data: { labels: [], datasets: [
      { label: "p50 run", data: [], backgroundColor: "#5b8def" },
      { label: "p95 run", data: [], backgroundColor: "#5b8def88" },
      { label: "p95 queue wait", data: [], backgroundColor: "#ffb454aa" },
    ] },
    options: {
      scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid, title: { display: true, text: "seconds" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });

  make("workers", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "busy %", data: [], backgroundColor: [] }] },
    options: {
      indexAxis: "y",
      scales: { x: { min: 0, max: 100, grid, title: { display: true, text: "% busy" } }, y: { grid: { display: false } } },
      plugins: { legend: { display: false } },
    },
  });

  make("viewers", {
    type: "bar",
    data: { labels: [], datasets: [
      { label: "freezes (browser)", data: [], backgroundColor: "#ff6b6b", yAxisID: "y" },
      { label: "stalls (server playhead)", data: [], backgroundColor: "#ffb454", yAxisID: "y" },
      { label: "A/V skew ms", type: "line", data: [], showLine: false, pointRadius: 5, pointStyle: "rectRot",
        borderColor: "#5b8def", backgroundColor: "#5b8def", yAxisID: "y1" },
    ] },
    options: {
      scales: {
        x: { grid: { display: false } },
        y: { beginAtZero: true, grid, ticks: { precision: 0 }, title: { display: true, text: "count" } },
        y1: { position: "right", grid: { display: false }, title: { display: true, text: "skew ms" } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  });

  make("cost", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "$ / episode-minute", data: [], backgroundColor: "#3ecf8e" }] },
    options: {
      scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid, ticks: { callback: (v) => money(v) } } },
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => money(item.raw) } } },
    },
  });

  // ------------------------------------------------------------------ data
  function applySpans(delta) {
    for (const [id, part] of Object.entries(delta || {})) {
      if (part.from === 0) { delete state.spans[id]; state.ganttKey = ""; }  // a re-run starts its spans afresh
      const rows = state.spans[id] || (state.spans[id] = []);
      if (part.from !== rows.length + (rows.offset || 0)) {
        if (rows.length === 0) { rows.offset = part.from; } else { return false; }
      }
      for (const row of part.rows) rows.push(row);
    }
    return true;
  }

  function onHello(msg) {
    state.spans = {};
    state.ganttKey = "";
    state.pricing = msg.pricing;
    state.history = msg.history || [];
    applySpans(msg.spans);
    pricingNote();
  }

  function onTick(snap) {
    state.snapshot = snap;
    state.seq = snap.seq;
    state.t = snap.t;
    state.ticks += 1;
    if (!applySpans(snap.spans)) { reconnect(); return; }
    const listed = new Set(snap.episodes.map((e) => e.id));
    for (const id of Object.keys(state.spans)) if (!listed.has(id)) delete state.spans[id];
    state.history.push({ t: snap.t, buffered: Object.fromEntries(snap.episodes.filter((e) => e.buffered_s !== null).map((e) => [e.id, e.buffered_s])) });
    while (state.history.length && state.history[0].t < snap.t - 180) state.history.shift();
    render(snap);
  }

  // ------------------------------------------------------------------ drawing
  function render(snap) {
    const s = snap.summary;
    $("conn").textContent = `live · tick ${snap.seq} · ${snap.tick_ms} ms`;
    $("conn").className = "conn live";
    $("t-active").textContent = s.active;
    $("t-episodes").textContent = `of ${s.episodes}`;
    $("t-viewers").textContent = s.viewers;
    $("t-ttff").textContent = s.ttff_p50 === null ? "–" : fmt(s.ttff_p50) + " s";
    $("t-vttff").textContent = s.viewer_ttff_p50 === null ? "" : `viewer ${fmt(s.viewer_ttff_p50)} s`;
    $("t-speech").textContent = s.first_speech_p50 === null ? "–" : fmt(s.first_speech_p50) + " s";
    $("t-stalls").textContent = `${s.stalls_viewer} / ${s.stalls_server}`;
    $("t-quality").textContent = s.quality_changes;
    $("t-errors").textContent = `${s.errors} / ${s.admission_refusals}`;
    $("t-cost").textContent = money(s.cost_per_min);
    $("t-costtotal").textContent = `${money(s.cost)} total`;
    episodeSelect(snap.episodes);
    gantt(snap.episodes);
    buffer(snap.episodes);
    distribution(charts.ttff, snap.startup.server_ttff, snap.startup.viewer_ttff);
    distribution(charts.speech, snap.startup.server_speech, snap.startup.viewer_speech);
    stages(snap.stages);
    workers(snap.workers, snap.utilisation_window_s);
    viewers(snap.viewers, snap.episodes);
    cost(snap.episodes);
    table(snap.episodes);
  }

  function episodeSelect(episodes) {
    const select = $("episode");
    if (!state.userSelected || !episodes.some((e) => e.id === state.selected)) {
      const live = episodes.find((e) => e.status === "generating");
      state.selected = (live || episodes[0] || {}).id || null;
      state.userSelected = false;
    }
    const key = episodes.map((e) => `${e.id}:${e.status}:${e.title}`).join("|");
    if (select.dataset.key !== key) {
      select.replaceChildren(...episodes.map((e) => {
        const o = document.createElement("option");
        o.value = e.id;
        o.textContent = `${short(e.title, 40)} (${e.status})`;
        return o;
      }));
      select.dataset.key = key;
    }
    if (state.selected) select.value = state.selected;
  }
  $("episode").addEventListener("change", (ev) => {
    state.selected = ev.target.value; state.userSelected = true; state.ganttKey = "";
    if (state.snapshot) gantt(state.snapshot.episodes);
  });

  function gantt(episodes) {
    const id = state.selected;
    const rows = (id && state.spans[id]) || [];
    const key = `${id}:${rows.length + (rows.offset || 0)}`;
    if (key === state.ganttKey) return;
    state.ganttKey = key;
    const segments = [...new Set(rows.filter((r) => r[1] !== null).map((r) => r[1]))].sort((a, b) => a - b);
    const shown = new Set(segments.slice(-MAX_GANTT_SEGMENTS));
    const labels = ["script (LLM)", "title cards"];
    for (const seg of shown) labels.push(`#${seg}`);
    const sets = new Map();
    const dataset = (name, color, order) => {
      if (!sets.has(name)) sets.set(name, { label: name, data: [], backgroundColor: color, grouped: false, order,
        barPercentage: 0.95, categoryPercentage: 0.9, borderSkipped: false, borderRadius: 2 });
      return sets.get(name);
    };
    const queued = dataset("queued", "rgba(142,151,176,0.22)", 10);
    let maxX = 1;
    for (const [stage, seg, tier, worker, q, start, end, note] of rows) {
      let y;
      if (seg === null) y = stage === "script" ? labels[0] : labels[1];
      else if (shown.has(seg)) y = `#${seg}`;
      else continue;
      const what = seg === null ? `${stage}${note ? " (" + note + ")" : ""}` : `${stage} #${seg}`;
      const detail = `${tier || "no tier"} · ${worker} · ran ${(end - start).toFixed(3)} s · waited ${(start - q).toFixed(3)} s`;
      const ds = tier ? dataset(tier, tierColor(tier), 1) : dataset(`${stage} (no tier)`, UNTIERED[stage] || "#64748b", 2);
      ds.data.push({ x: [start, Math.max(end, start + 0.01)], y, label: what, detail });
      if (start - q > 0.005) queued.data.push({ x: [q, start], y, label: `queued: ${what}`, detail });
      maxX = Math.max(maxX, end);
    }
    const order = [...sets.values()].sort((a, b) => {
      const ta = tierOrder(a.label), tb = tierOrder(b.label);
      return a.order - b.order || ta - tb || a.label.localeCompare(b.label);
    });
    charts.gantt.data.labels = labels;
    charts.gantt.data.datasets = order.filter((d) => d.data.length);
    charts.gantt.options.scales.x.max = Math.ceil(maxX);
    charts.gantt.update("none");
    const ep = episodes.find((e) => e.id === id);
    $("gantt-hint").textContent = ep ? `${rows.length} spans · ${ep.segments} segments · ${ep.status}` : "no episode yet";
  }

  function buffer(episodes) {
    const titles = Object.fromEntries(episodes.map((e) => [e.id, e.title]));
    const ids = [];
    for (const h of state.history) for (const id of Object.keys(h.buffered)) if (!ids.includes(id)) ids.push(id);
    charts.buffer.data.datasets = ids.map((id, i) => ({
      label: short(titles[id] || id, 28),
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length],
      data: state.history.filter((h) => id in h.buffered).map((h) => ({ x: h.t - state.t, y: h.buffered[id] })),
    }));
    charts.buffer.options.scales.x.min = -Math.min(180, Math.max(30, state.t - (state.history[0] || { t: state.t }).t));
    charts.buffer.options.scales.x.max = 0;
    charts.buffer.update("none");
  }

  function bins(values) {
    const max = Math.max(0.5, ...values);
    const step = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30].find((s) => max / s <= 12) || 60;
    const n = Math.floor(max / step) + 1;
    return { step, n, labels: Array.from({ length: n }, (_, i) => `${+(i * step).toFixed(2)}–${+((i + 1) * step).toFixed(2)}`) };
  }
  function counts(values, step, n) {
    const out = new Array(n).fill(0);
    for (const v of values) out[Math.min(n - 1, Math.floor(v / step))] += 1;
    return out;
  }
  function distribution(chart, server, viewer) {
    const b = bins(server.concat(viewer));
    chart.data.labels = b.labels;
    chart.data.datasets = [
      { label: `server (${server.length})`, data: counts(server, b.step, b.n), backgroundColor: "#5b8def" },
      { label: `viewer-reported (${viewer.length})`, data: counts(viewer, b.step, b.n), backgroundColor: "#ffb454" },
    ];
    chart.update("none");
  }

  function stageLabel(s) {
    if (s.tier !== "none") return `${s.stage} ${s.tier}`;
    return s.stage === "video" ? "video (cards)" : s.stage;
  }
  function stages(list) {
    const c = charts.stages;
    c.data.labels = list.map(stageLabel);
    c.data.datasets[0].data = list.map((s) => s.p50);
    c.data.datasets[1].data = list.map((s) => s.p95);
    c.data.datasets[2].data = list.map((s) => s.wait_p95);
    c.update("none");
  }

  function workers(list, window_s) {
    const c = charts.workers;
    c.data.labels = list.map((w) => w.worker);
    c.data.datasets[0].data = list.map((w) => +(w.utilisation * 100).toFixed(1));
    c.data.datasets[0].backgroundColor = list.map((w) => UNTIERED[w.stage] ? { script: "#a78bfa", speech: "#2dd4bf", video: "#5b8def" }[w.stage] : "#64748b");
    c.update("none");
    $("util-hint").textContent = `busy share, last ${window_s} s`;
  }

  function viewers(list, episodes) {
    const titles = Object.fromEntries(episodes.map((e) => [e.id, e.title]));
    const c = charts.viewers;
    c.data.labels = list.map((v) => `${short(titles[v.episode] || v.episode, 14)} · ${v.viewer.slice(0, 4)}${v.connected ? "" : " (left)"}`);
    c.data.datasets[0].data = list.map((v) => v.freezes);
    c.data.datasets[1].data = list.map((v) => v.server_stalls);
    c.data.datasets[2].data = list.map((v) => v.skew_ms);
    c.update("none");
  }

  function cost(episodes) {
    const list = episodes.filter((e) => e.cost_per_min !== null).slice().reverse();
    const c = charts.cost;
    c.data.labels = list.map((e) => short(e.title, 16));
    c.data.datasets[0].data = list.map((e) => e.cost_per_min);
    c.update("none");
  }

  function pricingNote() {
    const p = state.pricing;
    if (!p) return;
    const charge = Object.entries(p.charge.stages).map(([stage, dev]) => `${stage} at ${dev}`).join(", ");
    const gpus = Object.entries(p.gpu).map(([name, g]) => `${name} ${g.spot}/${g.reserved}`).join(" · ");
    $("pricing-note").textContent =
      `Busy seconds of each stage (sum of span run times) × the price of its device: ${p.charge.default}` +
      (p.charge.default === "cpu" ? ` at $${p.cpu.core_hour}/core-hour` : "") + (charge ? `; ${charge}` : "") +
      `. GPU $/h spot/reserved: ${gpus}. Set in configs/pricing.yaml.`;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.append(td);
    return td;
  }
  function table(episodes) {
    const body = $("episodes");
    body.replaceChildren(...episodes.map((e) => {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      const a = document.createElement("a");
      a.href = "/watch/" + encodeURIComponent(e.id);
      a.textContent = short(e.title, 60);
      a.title = e.topic;
      name.append(a);
      tr.append(name);
      cell(tr, e.status, "status-" + e.status);
      cell(tr, fmt(e.age_s, 0), "num");
      cell(tr, fmt(e.generated_s, 1), "num");
      cell(tr, fmt(e.buffered_s, 1), "num");
      cell(tr, String(e.viewers), "num");
      cell(tr, fmt(e.first_content_s), "num");
      cell(tr, fmt(e.first_speech_s), "num");
      cell(tr, String(e.segments), "num");
      cell(tr, e.tier || "–");
      cell(tr, String(e.quality_changes), "num");
      cell(tr, fmt(e.busy_s, 1), "num");
      cell(tr, money(e.cost), "num");
      cell(tr, money(e.cost_per_min), "num");
      return tr;
    }));
  }

  // ------------------------------------------------------------------ the stream
  let source = null;
  function connect() {
    // With API keys configured the stream needs one: /dashboard?key=... passes it on.
    const key = new URLSearchParams(location.search).get("key");
    source = new EventSource("/api/dashboard/stream" + (key ? "?key=" + encodeURIComponent(key) : ""));
    source.addEventListener("hello", (ev) => onHello(JSON.parse(ev.data)));
    source.addEventListener("tick", (ev) => onTick(JSON.parse(ev.data)));
    source.onerror = () => {
      $("conn").className = "conn down";
      if (source.readyState === EventSource.CLOSED) {
        // Refused (401/403 without a valid key, 503 with too many dashboards open): the
        // browser does not retry those by itself; try again slowly, never in a storm.
        $("conn").textContent = "stream refused (an API key? open /dashboard?key=…); retrying in 10 s";
        setTimeout(reconnect, 10_000);
      } else {
        $("conn").textContent = "reconnecting…";
      }
    };
  }
  function reconnect() {
    if (source) source.close();
    connect();
  }
  window.addEventListener("pagehide", () => source && source.close());
  connect();
})();

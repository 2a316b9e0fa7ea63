// framewire dashboard: one WebSocket (/ws?stats=1&thumbs=1), a card per stream, a timeline of
// change/stream/alert events and a pipeline panel. Messages only update state; rendering happens
// at most 4 times a second per card, in animation frames, so 64 streams at 25 fps stay cheap.
// Protocol: docs/contracts.md ("WebSocket", "Dashboard").

const COLOURS = { black: '#000', white: '#fff', red: '#f00', green: '#0f0', blue: '#00f', yellow: '#ff0', cyan: '#0ff', magenta: '#f0f' };
const CARD_MS = 250;
/** Cards redrawn per animation frame at most, so 64 cards due together spread over frames. */
const CARDS_PER_FRAME = 12;
const HISTORY_S = 60;
const TIMELINE_MAX = 300;

const $ = (sel, el = document) => el.querySelector(sel);
const streams = new Map(); // stream id -> state
const active = new Map(); // alert id -> firing record
const dirty = new Set();
let pipeline;
/** The latest `shadow` report of each lane with a shadow model: `${model}\u0000${shadow}` -> record. */
const shadows = new Map();
let filter = new URL(location.href).searchParams.get('q') ?? '';

// ---------------------------------------------------------------- filter (kept in the URL)
const filterBox = $('#filter');
filterBox.value = filter;
filterBox.addEventListener('input', () => {
  filter = filterBox.value.trim();
  const url = new URL(location.href);
  if (filter) url.searchParams.set('q', filter);
  else url.searchParams.delete('q');
  history.replaceState(null, '', url);
  for (const s of streams.values()) applyFilter(s);
  renderTimelineFilter();
  renderCounts();
});
const matches = (id) => !filter || id.toLowerCase().includes(filter.toLowerCase());
function applyFilter(s) {
  const hidden = !matches(s.id);
  s.el.classList.toggle('hidden', hidden);
  if (!hidden) touch(s); // what changed while it was hidden
}

// ---------------------------------------------------------------- stream cards
function streamOf(id) {
  let s = streams.get(id);
  if (s) return s;
  const el = $('#card').content.firstElementChild.cloneNode(true);
  el.dataset.stream = id;
  $('.id', el).textContent = id;
  s = { id, el, stats: undefined, label: undefined, thumb: undefined, p50: [], p99: [], lastRender: 0, alerts: new Map(), statsDirty: false, alertsDirty: false, shown: {} };
  streams.set(id, s);
  // Keep the grid sorted by id.
  const after = [...streams.keys()].sort().find((k) => k > id);
  $('#grid').insertBefore(el, after ? streams.get(after).el : null);
  applyFilter(s);
  renderCounts();
  return s;
}

function touch(s) {
  dirty.add(s);
  if (dirty.size === 1) requestAnimationFrame(render);
}

function render(now) {
  let budget = CARDS_PER_FRAME;
  for (const s of dirty) {
    if (now - s.lastRender < CARD_MS) continue;
    dirty.delete(s);
    s.lastRender = now;
    if (!s.el.classList.contains('hidden')) renderCard(s);
    if (--budget === 0) break;
  }
  if (dirty.size) requestAnimationFrame(render);
}

/** Sets an element's text only when it changed (no layout work for the same text). */
function setText(s, key, el, text) {
  if (s.shown[key] === text) return;
  s.shown[key] = text;
  el.textContent = text;
}

const fmtMs = (ms) => (ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

function renderCard(s) {
  const el = s.el;
  const st = s.stats;
  const top = s.label ?? st?.top;
  if (top) {
    setText(s, 'label', $('.label', el), top.label);
    setText(s, 'score', $('.score', el), top.score.toFixed(2));
    if (s.shown.swatch !== top.label) $('.swatch', el).style.background = COLOURS[top.label] ?? 'transparent';
    s.shown.swatch = top.label;
  }
  if (s.model) setText(s, 'model', $('.model', el), s.model);
  if (s.smoothed) setText(s, 'smoothed', $('.smoothed', el), s.smoothed);
  if (st && s.statsDirty) {
    s.statsDirty = false;
    const h = $('.health', el);
    h.textContent = st.health;
    h.className = `health ${st.health}`;
    const drops = Object.entries(st.droppedPerSec).map(([r, n]) => `${r} ${n}/s`).join(', ');
    $('.rates', el).textContent = `labelled ${st.labelledPerSec}/s` + (drops ? ` · dropped ${drops}` : '');
    $('.since', el).textContent = `last chunk ${fmtMs(st.sinceChunkMs)} ago · decoder ${st.decoder}`;
    $('.latency', el).textContent = `capture→publish p50 ${fmtMs(st.p50Ms)} · p99 ${fmtMs(st.p99Ms)}`;
    drawChart($('.chart', el), s.p50, s.p99);
  }
  if (s.thumb && s.thumbShown !== s.thumb) {
    $('.thumb', el).src = s.thumb;
    s.thumbShown = s.thumb;
  }
  if (s.alertsDirty) {
    s.alertsDirty = false;
    $('.alerts', el).replaceChildren(...[...s.alerts.values()].map((a) => li(`⚠ ${a.rule} (${a.severity})${a.label ? ` ${a.label}` : ''} since frame ${a.fromFrame}`)));
    el.classList.toggle('alerting', s.alerts.size > 0);
  }
}

function drawChart(canvas, p50, p99) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(100, ...p99.filter((v) => v !== undefined));
  const x = (i) => (i / (HISTORY_S - 1)) * w;
  const y = (v) => h - 1 - (v / max) * (h - 2);
  const off = HISTORY_S - p50.length;
  ctx.fillStyle = '#d2992233';
  p99.forEach((v, i) => v !== undefined && ctx.fillRect(x(i + off) - 2, y(v), 4, h - y(v)));
  ctx.strokeStyle = '#58a6ff';
  ctx.beginPath();
  let pen = false;
  p50.forEach((v, i) => {
    if (v === undefined) return (pen = false);
    pen ? ctx.lineTo(x(i + off), y(v)) : ctx.moveTo(x(i + off), y(v));
    pen = true;
  });
  ctx.stroke();
  ctx.fillStyle = '#8b95a3';
  ctx.font = '10px sans-serif';
  ctx.fillText(`${Math.round(max)} ms`, 2, 10);
}

const li = (text, cls) => {
  const e = document.createElement('li');
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

// ---------------------------------------------------------------- timeline, alerts, pipeline
const timeline = $('#timeline');
function addEvent(stream, text, cls, ts) {
  const e = li('', cls);
  e.dataset.stream = stream;
  const t = document.createElement('span');
  t.className = 't';
  t.textContent = new Date(ts ?? Date.now()).toLocaleTimeString();
  e.append(t, `${stream} ${text}`);
  if (!matches(stream)) e.hidden = true;
  timeline.prepend(e);
  while (timeline.childElementCount > TIMELINE_MAX) timeline.lastElementChild.remove();
}
function renderTimelineFilter() {
  for (const e of timeline.children) e.hidden = !matches(e.dataset.stream);
}

function renderActive() {
  $('#active').replaceChildren(...[...active.values()].map((a) => li(`${a.stream}: ${a.rule} (${a.severity})${a.label ? ` ${a.label} ${a.score?.toFixed(2)}` : ' stalled'}`)));
  renderCounts();
}

function renderCounts() {
  const shown = [...streams.values()].filter((s) => matches(s.id)).length;
  $('#counts').textContent = `${shown}/${streams.size} streams · ${active.size} alerts`;
}

function renderPipeline() {
  const p = pipeline;
  const rows = [
    ['streams', p.streams],
    ['decoders', p.decoders ?? '–'],
    ['consumer lag', p.lag ?? 'unknown'],
    ...p.models.flatMap((m) => [
      [`${m.model} batch`, m.batchMean === undefined ? '–' : `${m.batchMean} frames (${m.batches}/s)`],
      [`${m.model} Triton`, `queue ${m.queueMs ?? '–'} ms · compute ${m.computeMs ?? '–'} ms`],
      [`${m.model} waiting`, `${m.queuedFrames ?? 0} frames`],
    ]),
    ...[...shadows.values()].map((s) => [
      `${s.model} shadow`,
      `${s.shadow}: ${(100 * s.agreement).toFixed(1)} % agree over ${s.frames} frames · |Δ| ${s.meanAbsDelta.toFixed(4)} · ${s.latencyMs.primary.toFixed(0)} / ${s.latencyMs.shadow.toFixed(0)} ms`,
    ]),
  ];
  $('#pipeline-body').replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const a = document.createElement('td');
      const b = document.createElement('td');
      a.textContent = k;
      b.textContent = String(v);
      tr.append(a, b);
      return tr;
    }),
  );
}

// ---------------------------------------------------------------- messages
function onMessage(m) {
  switch (m.type) {
    case 'label': {
      const s = streamOf(m.stream);
      const top = m.labels[0];
      if (top) s.label = { label: top.label, score: top.score };
      s.model = m.model;
      touch(s);
      break;
    }
    case 'stats': {
      const s = streamOf(m.stream);
      s.stats = m;
      if (m.model) s.model = m.model;
      if (m.smoothed) s.smoothed = m.smoothed;
      s.statsDirty = true;
      s.p50.push(m.p50Ms);
      s.p99.push(m.p99Ms);
      if (s.p50.length > HISTORY_S) (s.p50.shift(), s.p99.shift());
      touch(s);
      break;
    }
    case 'thumb': {
      const s = streamOf(m.stream);
      s.thumb = `data:image/jpeg;base64,${m.jpeg}`;
      touch(s);
      break;
    }
    case 'change': {
      const s = streamOf(m.stream);
      s.smoothed = m.to;
      touch(s);
      addEvent(m.stream, `${m.from} → ${m.to} at frame ${m.atFrame}`, 'change', m.captureTs);
      break;
    }
    case 'stream':
      addEvent(m.stream, `stream ${m.state}${m.how ? ` (${m.how})` : ''}`, 'stream', m.ts);
      if (streams.has(m.stream)) touch(streams.get(m.stream));
      break;
    case 'degraded':
      // The stream's classified rate under load (docs/contracts.md, "Events").
      addEvent(m.stream, m.restored ? `rate restored: every frame (${m.fullRate} fps)` : `degraded to ${m.rate} fps of ${m.fullRate} (${m.priority}, ${m.reason})`, 'stream', m.ts);
      if (streams.has(m.stream)) touch(streams.get(m.stream));
      break;
    case 'alert': {
      const s = streamOf(m.stream);
      const seen = active.has(m.id);
      s.alertsDirty = true;
      if (m.state === 'firing') {
        active.set(m.id, m);
        s.alerts.set(m.id, m);
      } else {
        active.delete(m.id);
        s.alerts.delete(m.id);
      }
      // A snapshot after a reconnect repeats firing records: the timeline shows changes only.
      if (!(seen && m.state === 'firing')) addEvent(m.stream, `alert ${m.rule} ${m.state}${m.label ? ` (${m.label})` : ''}`, m.state === 'firing' ? 'alert' : 'resolved', m.publishedTs);
      renderActive();
      touch(s);
      break;
    }
    case 'pipeline':
      pipeline = m;
      renderPipeline();
      break;
    case 'shadow':
      shadows.set(`${m.model}\u0000${m.shadow}`, m);
      if (pipeline) renderPipeline();
      break;
    case 'promotion':
      // The old pairing's report is over: the next report names the new primary.
      shadows.delete(`${m.from}\u0000${m.model}`);
      addEvent('*', `${m.model} promoted over ${m.from} (agreement ${(100 * m.agreement).toFixed(1)} % over ${m.frames} frames)`, 'stream', m.ts);
      if (pipeline) renderPipeline();
      break;
    case 'hello':
      $('#name').textContent = m.name;
      break;
  }
}

// ---------------------------------------------------------------- connection (reconnects by itself)
let retryMs = 500;
function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?stats=1&thumbs=1`;
  // With access control the page was opened as /?token=…: the WebSocket carries the token as a
  // subprotocol (docs/contracts.md), which keeps it out of the upgrade URL.
  const token = new URL(location.href).searchParams.get('token');
  const ws = token ? new WebSocket(url, ['framewire', `framewire.bearer.${token}`]) : new WebSocket(url);
  const conn = $('#conn');
  ws.onopen = () => {
    retryMs = 500;
    conn.textContent = 'live';
    conn.className = 'conn up';
    // Alerts are re-sent by the server's hello: start from its view.
    active.clear();
    for (const s of streams.values()) (s.alerts.clear(), (s.alertsDirty = true), touch(s));
    renderActive();
  };
  ws.onmessage = (ev) => {
    try {
      onMessage(JSON.parse(ev.data));
    } catch (err) {
      console.warn('dashboard: bad message', err);
    }
  };
  ws.onclose = () => {
    conn.textContent = `reconnecting in ${(retryMs / 1000).toFixed(1)} s`;
    conn.className = 'conn down';
    setTimeout(connect, retryMs);
    retryMs = Math.min(5000, retryMs * 2);
  };
}
connect();

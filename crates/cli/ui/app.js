// runjournal ui: a single page over the served API (docs/ui.md). No build
// step, no dependencies. Views: the run list (#/) and a run (#/run/G/E/A).
'use strict';

const ROW = 26;          // px per timeline row (matches --row in style.css)
const PAGE = 500;        // events fetched per history range request
const OVERSCAN = 30;     // rows rendered beyond the visible ones

// ---- token (only when the server needs one: #token=... in the URL) ----
if (location.hash.startsWith('#token=')) {
  sessionStorage.setItem('runjournal-token', decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, '', '#/');
}
const token = sessionStorage.getItem('runjournal-token');

function authHeaders() { return token ? { authorization: 'Bearer ' + token } : {}; }
function withToken(url) { return token ? url + (url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(token) : url; }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), 'content-type': 'application/json' } });
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : String(response.status));
    error.api = body.error;
    throw error;
  }
  return body;
}

// ---- records ----
// A run record of the served API (`RunRecord`: key, head, status, fork) in
// the page's terms.
function normal(r) {
  return {
    run: r.key, status: r.status, epoch: r.head.epoch, next_seq: r.head.next_seq,
    created_ts: r.created_ts, updated_ts: r.head.last_ts,
    parent: r.fork ? r.fork.parent_key : null, forked_at: r.fork ? r.fork.seq : null, fork: r.fork,
  };
}
// Events in a run's whole history: its own log plus each ancestor's prefix.
// `lookup(key)` gives an ancestor's normal record (from a list or the API).
async function historyLength(record, lookup) {
  let total = record.next_seq;
  let fork = record.fork;
  while (fork) {
    total += fork.seq + 1;
    const parent = await lookup(fork.parent_key);
    fork = parent ? parent.fork : null;
  }
  return total;
}

// ---- helpers ----
const $ = (selector) => document.querySelector(selector);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const keyText = (k) => `${k.goal}/${k.episode}/${k.agent}`;
const keyPath = (k) => [k.goal, String(k.episode), k.agent].map(encodeURIComponent).join('/');
const sameKey = (a, b) => a && b && a.goal === b.goal && a.episode === b.episode && a.agent === b.agent;
function showError(error) { $('#error').textContent = error ? (error.message || String(error)) : ''; }
function iso(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : ''; }
function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3600000) return `${(ms / 60000).toFixed(1)}m`;
  return `${(ms / 3600000).toFixed(1)}h`;
}
function clip(text, n = 140) { text = String(text ?? ''); return text.length > n ? text.slice(0, n) + '…' : text; }

// What one event says, in a line.
function summary(event) {
  switch (event.type) {
    case 'run_started': return [event.meta.model, event.meta.prompt && clip(event.meta.prompt, 80), event.meta.forked_from && `forked from ${keyText(event.meta.forked_from.run)} @${event.meta.forked_from.seq}`].filter(Boolean).join(' · ');
    case 'attached': return `resumed by ${event.owner}`;
    case 'step': return event.messages.map((m) => `${m.role}${m.name ? ' ' + m.name : ''}: ${clip(m.content, 60)}`).join('  |  ');
    case 'phase_started': return `▶ ${event.name} (#${event.index})`;
    case 'phase_completed': return `■ ${event.name}: ${clip(event.output, 80)}`;
    case 'compaction_started': return `compaction started (${event.source}${event.messages_before != null ? ', ' + event.messages_before + ' messages' : ''})`;
    case 'compaction_done': return `compaction done${event.summary ? ': ' + clip(event.summary, 80) : ''}`;
    case 'handoff_sent': return `handoff ${event.id}: ${event.from} → ${event.to}`;
    case 'handoff_acked': return `handoff ${event.id} acked by ${event.by}`;
    case 'handoff_rejected': return `handoff ${event.id} rejected by ${event.by}: ${event.reason}`;
    case 'handoff_timed_out': return `handoff ${event.id} timed out`;
    case 'task_claimed': return `${event.agent} claims ${event.task} (p${event.priority}, ${event.confidence})`;
    case 'task_completed': return `${event.agent} completed ${event.task}: ${event.result}`;
    case 'agent_died': return `died: ${event.reason}${event.exit_code != null ? ' (exit ' + event.exit_code + ')' : ''}`;
    case 'teardown': return `teardown ${event.resource}${event.error ? ': ' + event.error : ''}`;
    case 'run_completed': return event.output ? clip(event.output, 100) : 'completed';
    case 'run_failed': return `${event.error.kind}: ${event.error.message}`;
    case 'run_interrupted': return `interrupted (${event.cause})`;
    case 'custom': return `${event.kind}: ${clip(event.data, 80)}`;
    case 'usage': return [event.input_tokens != null && `in ${event.input_tokens}`, event.output_tokens != null && `out ${event.output_tokens}`, event.cost_usd != null && `$${event.cost_usd}`].filter(Boolean).join(' · ');
    case 'segment_rotated': return `segment rotated (${event.reason})${event.session_id ? ' → ' + event.session_id : ''}`;
    case 'resource_acquired': return `acquired ${event.resource}`;
    default: return '';
  }
}

// ---- routing ----
let view = null; // the current view's teardown
function route() {
  if (view) { view(); view = null; }
  showError(null);
  const hash = location.hash || '#/';
  const match = hash.match(/^#\/run\/([^/]+)\/([^/]+)\/([^/]+)$/);
  $('#runs-view').hidden = !!match;
  $('#run-view').hidden = !match;
  if (match) {
    const key = { goal: decodeURIComponent(match[1]), episode: Number(decodeURIComponent(match[2])), agent: decodeURIComponent(match[3]) };
    view = runView(key);
  } else {
    view = runsView();
  }
}
window.addEventListener('hashchange', route);

// ---- run list ----
function runsView() {
  let closed = false;
  let timer = null;
  const load = async () => {
    const params = new URLSearchParams();
    const status = $('#filter-status').value;
    const goal = $('#filter-goal').value.trim();
    if (status) params.set('status', status);
    if (goal) params.set('goal', goal);
    try {
      const listed = await api('/v1/runs?' + params);
      if (closed) return;
      const runs = listed.runs.map(normal).sort((a, b) => b.updated_ts - a.updated_ts);
      const known = new Map(runs.map((r) => [keyText(r.run), r]));
      const lookup = async (k) => known.get(keyText(k)) || normal(await api(`/v1/runs/${keyPath(k)}`));
      for (const r of runs) r.history_len = await historyLength(r, lookup);
      if (closed) return;
      const search = $('#filter-search').value.trim().toLowerCase();
      const since = Number($('#filter-since').value || 0);
      const shown = runs.filter((r) => (!search || keyText(r.run).toLowerCase().includes(search))
        && (!since || r.updated_ts >= Date.now() - since));
      const body = $('#runs tbody');
      body.replaceChildren(...shown.map((r) => el('tr', { 'data-run': keyText(r.run), onclick: () => { location.hash = '#/run/' + keyPath(r.run); } },
        el('td', {}, el('span', { class: 'status ' + r.status }, r.status)),
        el('td', { class: 'mono' }, keyText(r.run)),
        el('td', { class: 'events' }, r.history_len),
        el('td', { title: iso(r.updated_ts) }, ago(r.updated_ts)),
        el('td', { class: 'mono' }, r.parent ? keyText(r.parent) + (r.forked_at != null ? ` @${r.forked_at}` : '') : '–'))));
      $('#runs-count').textContent = `${shown.length} of ${runs.length} runs`;
      showError(null);
    } catch (error) { showError(error); }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, 300); };
  const inputs = ['#filter-status', '#filter-goal', '#filter-search', '#filter-since'];
  inputs.forEach((s) => $(s).addEventListener('input', soon));
  const live = new EventSource(withToken('/v1/subscribe'));
  live.addEventListener('envelope', soon);
  load();
  return () => { closed = true; live.close(); clearTimeout(timer); inputs.forEach((s) => $(s).removeEventListener('input', soon)); };
}

// ---- one run ----
function runView(key) {
  const kp = keyPath(key);
  const cache = new Map();      // position -> envelope
  const pending = new Set();    // pages being fetched
  let outline = null;
  let record = null;
  let len = 0;                  // events in the whole history, grown by live events
  let prefix = 0;               // positions before the run's own seq 0 (a fork's prefix)
  const length = () => len;
  let selected = null;
  let closed = false;
  let source = null;
  let refresh = null;
  const timeline = $('#timeline');
  const spacer = $('#spacer');
  spacer.replaceChildren();
  $('#state').replaceChildren(el('p', { class: 'hint' }, 'Click an event to see the resume state as of it.'));
  $('#state-at').textContent = '';
  $('#run-key').textContent = keyText(key);
  $('#gantt').replaceChildren();
  $('#lineage').replaceChildren();
  $('#compare').replaceChildren();

  const anomalyAt = () => {
    const map = new Map();
    for (const a of outline.anomalies || []) map.set(prefix + a.seq, a);
    return map;
  };
  let anomalies = new Map();

  function phaseAt(pos) {
    let found = null;
    if (!outline) return null;
    for (const p of outline.phases) {
      if (p.start > pos) break;
      if (p.end === null || p.end >= pos) found = p;
    }
    return found;
  }
  const boundaryTypes = new Set(['compaction_done', 'segment_rotated']);

  function row(pos) {
    const envelope = cache.get(pos);
    const top = pos * ROW;
    if (!envelope) return el('div', { class: 'ev loading', style: `top:${top}px`, 'data-pos': pos }, el('span', { class: 'pos' }, pos), '', '', 'loading…');
    const previous = cache.get(pos - 1);
    const e = envelope.event;
    const anomaly = anomalies.get(pos);
    const phase = phaseAt(pos);
    const classes = ['ev', envelope.epoch % 2 ? 'epoch-odd' : 'epoch-even'];
    if (e.type === 'agent_died' || e.type === 'run_failed') classes.push('death');
    if (boundaryTypes.has(e.type)) classes.push('boundary');
    if (previous && previous.epoch !== envelope.epoch) classes.push('epoch-start');
    if (anomaly) classes.push('anomaly');
    if (!sameKey(envelope.run, key)) classes.push('inherited');
    if (selected === pos) classes.push('sel');
    return el('div', {
      class: classes.join(' '), style: `top:${top}px`, 'data-pos': pos, 'data-seq': envelope.seq, 'data-type': e.type,
      title: `seq ${envelope.seq} · epoch ${envelope.epoch} · ${iso(envelope.ts)}${anomaly ? ' · anomaly ' + anomaly.kind + ': ' + anomaly.detail : ''}`,
      onclick: () => select(pos),
    },
    el('span', { class: 'pos' }, envelope.seq, sameKey(envelope.run, key) ? null : el('small', {}, ' ↑')),
    el('span', { class: 'dt' }, previous ? '+' + duration(envelope.ts - previous.ts) : ''),
    el('span', { class: 'phase', style: phase ? `color:${phaseColor(phase.index)}` : '' }, phase ? phase.name : ''),
    el('span', { class: 'type t-' + e.type }, e.type),
    el('span', { class: 'summary' }, summary(e), anomaly ? el('span', { class: 'rule' }, `⚠ ${anomaly.kind}`) : null));
  }

  // Rows come from the cache at once; the pages they need are fetched once
  // scrolling pauses, so a fast scroll through a large run asks only for
  // the pages it stops at.
  let fetchTimer = null;
  function render() {
    if (!record) return;
    spacer.style.height = length() * ROW + 'px';
    const first = Math.max(0, Math.floor(timeline.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(length(), Math.ceil((timeline.scrollTop + timeline.clientHeight) / ROW) + OVERSCAN);
    clearTimeout(fetchTimer);
    fetchTimer = setTimeout(() => {
      for (let page = Math.floor(first / PAGE); page * PAGE < last; page++) fetchPage(page);
    }, cache.size ? 120 : 0);
    const rows = [];
    for (let pos = first; pos < last; pos++) rows.push(row(pos));
    spacer.replaceChildren(...rows);
  }

  // Positions in a fork's inherited prefix come from `history`, the run's
  // own events from `events` (by seq), which streams from the store.
  async function fetchPage(page) {
    const from = page * PAGE;
    const to = Math.min(length(), from + PAGE);
    if (pending.has(page) || (cache.has(from) && cache.has(to - 1))) return;
    pending.add(page);
    try {
      if (from < prefix) {
        const { envelopes } = await api(`/v1/runs/${kp}/history?from=${from}&limit=${Math.min(PAGE, prefix - from)}`);
        envelopes.forEach((envelope, i) => cache.set(from + i, envelope));
      }
      const own = Math.max(from, prefix);
      if (own < to) {
        const { envelopes } = await api(`/v1/runs/${kp}/events?from=${own - prefix}&limit=${to - own}`);
        envelopes.forEach((envelope) => cache.set(prefix + envelope.seq, envelope));
      }
      if (!closed) render();
    } catch (error) { showError(error); } finally { pending.delete(page); }
  }

  async function select(pos) {
    selected = pos;
    render();
    const envelope = cache.get(pos);
    if (!envelope) return;
    const owner = envelope.run;
    $('#state-at').textContent = `as of seq ${envelope.seq}${sameKey(owner, key) ? '' : ' of ' + keyText(owner)}`;
    try {
      const state = await api(`/v1/runs/${keyPath(owner)}/state?at=${envelope.seq}`);
      if (closed || selected !== pos) return;
      showState(state, envelope);
    } catch (error) { showError(error); }
  }

  function showState(state, envelope) {
    const panel = $('#state');
    panel.dataset.seq = envelope.seq;
    const phases = [...state.phases.completed.map((p) => `${p.name} ✓`), state.phases.active && `${state.phases.active.name} …`].filter(Boolean).join(', ');
    const usage = state.usage || {};
    const rows = [
      ['status', el('span', { class: 'status ' + state.status }, state.status)],
      ['last seq', state.last_seq], ['epoch', state.epoch], ['iteration', state.iteration], ['segment', state.segment],
      ['phases', phases || '–'],
      ['compactions', state.compaction ? `${state.compaction.count}${state.compaction.active ? ' (active)' : ''}` : '–'],
      ['usage', [usage.input_tokens && `in ${usage.input_tokens}`, usage.output_tokens && `out ${usage.output_tokens}`, usage.cost_usd && `$${usage.cost_usd}`].filter(Boolean).join(' · ') || '–'],
      ['handoffs', (state.handoffs || []).map((h) => `${h.id}: ${h.status || ''}`).join(', ') || '–'],
      ['tasks', (state.tasks || []).map((t) => `${t.task}: ${t.status || ''}`).join(', ') || '–'],
      ['died', state.died ? `${state.died.reason}` : '–'],
      ['failure', state.failure ? `${state.failure.error ? state.failure.error.kind + ': ' + state.failure.error.message : JSON.stringify(state.failure)}` : '–'],
      ['anomalies', (state.anomalies || []).map((a) => `seq ${a.seq} ${a.kind}`).join(', ') || '–'],
    ];
    panel.replaceChildren(
      el('dl', {}, rows.flatMap(([name, value]) => [el('dt', {}, name), el('dd', { 'data-field': name }, value)])),
      el('div', { class: 'pane-title' }, `transcript of segment ${state.segment} (${state.transcript.length} messages)`),
      el('div', { id: 'transcript' }, state.transcript.map((m) => el('div', { class: 'msg ' + m.role }, el('span', { class: 'role' }, m.role + (m.name ? ' · ' + m.name : '')), m.content))),
      el('details', {}, el('summary', {}, 'raw state JSON'), el('pre', {}, JSON.stringify(state, null, 2))));
  }

  function gantt() {
    const box = $('#gantt');
    const start = outline.start_ts || 0;
    const end = Math.max(outline.end_ts || start, start + 1);
    const x = (ts) => `${((ts - start) / (end - start)) * 100}%`;
    const width = (a, b) => `${Math.max(0.4, ((b - a) / (end - start)) * 100)}%`;
    const nodes = [];
    outline.epochs.forEach((epoch, i) => {
      const next = outline.epochs[i + 1];
      nodes.push(el('div', { class: 'band', style: `left:${x(epoch.start_ts)};width:${width(epoch.start_ts, next ? next.start_ts : end)};background:${i % 2 ? '#eef2fb' : '#fff'}`, title: `epoch ${epoch.epoch} from position ${epoch.start}` }));
    });
    const depth = new Map();
    outline.phases.forEach((phase) => {
      const lane = depth.get(phase.index) ?? depth.size;
      depth.set(phase.index, lane);
      const stop = phase.end_ts ?? end;
      nodes.push(el('div', {
        class: 'bar' + (phase.end === null || phase.restarted ? ' open' : ''), 'data-phase': phase.name,
        style: `left:${x(phase.start_ts)};width:${width(phase.start_ts, stop)};top:${4 + (lane % 2) * 28}px`,
        title: `${phase.name}: ${duration(stop - phase.start_ts)}${phase.restarted ? ' (restarted after a resume)' : phase.end === null ? ' (not completed)' : ''}`,
        onclick: () => { timeline.scrollTop = phase.start * ROW; },
      }, `${phase.name} ${duration(stop - phase.start_ts)}`));
    });
    for (const mark of outline.marks) {
      const kind = mark.type === 'agent_died' || mark.type === 'run_failed' ? 'death' : boundaryTypes.has(mark.type) ? 'boundary' : null;
      if (kind) nodes.push(el('div', { class: 'mark ' + kind, style: `left:${x(mark.ts)}`, title: `${mark.type} at seq ${mark.seq}`, onclick: () => { timeline.scrollTop = mark.pos * ROW; } }));
    }
    if (!outline.phases.length) nodes.push(el('p', { class: 'hint', style: 'margin:.5rem' }, 'no phases in this run'));
    box.replaceChildren(...nodes);
  }

  function head() {
    $('#run-status').textContent = record.status;
    $('#run-status').className = 'status ' + record.status;
    $('#event-count').textContent = `${len} events · epoch ${record.epoch}`;
    $('#run-meta').textContent = `last activity ${ago(record.updated_ts)}`;
  }

  async function verify() {
    const badge = $('#integrity');
    try {
      const report = await api(`/v1/runs/${kp}/verify`);
      badge.className = 'badge ok';
      badge.textContent = `✓ chain verified (${report.events} events)`;
    } catch (error) {
      badge.className = 'badge bad';
      const seq = error.api && error.api.seq;
      badge.textContent = `✗ ${error.api ? error.api.code : 'error'}${seq != null ? ' at seq ' + seq : ''}`;
      badge.title = error.message;
    }
  }

  async function lineage() {
    try {
      const runs = (await api(`/v1/runs?goal=${encodeURIComponent(key.goal)}`)).runs.map(normal);
      const children = new Map();
      const known = new Set(runs.map((r) => keyText(r.run)));
      for (const r of runs) {
        const parent = r.parent && known.has(keyText(r.parent)) ? keyText(r.parent) : '';
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(r);
      }
      const tree = (parent) => {
        const list = (children.get(parent) || []).sort((a, b) => a.run.episode - b.run.episode || a.run.agent.localeCompare(b.run.agent));
        if (!list.length) return null;
        return el('ul', {}, list.map((r) => el('li', { 'data-run': keyText(r.run) },
          el('a', { href: '#/run/' + keyPath(r.run), class: sameKey(r.run, key) ? 'current' : '' }, `episode ${r.run.episode} · ${r.run.agent}`),
          ' ', el('span', { class: 'status ' + r.status }, r.status),
          r.forked_at != null ? el('span', { class: 'fork-at' }, ` fork @${r.forked_at}`) : null,
          tree(keyText(r.run)))));
      };
      if (closed) return;
      $('#lineage').replaceChildren(tree('') || el('p', { class: 'hint' }, 'no other runs of this goal'));
      const picker = $('#compare-with');
      const chosen = picker.value;
      const others = runs.filter((r) => !sameKey(r.run, key));
      picker.replaceChildren(el('option', { value: '' }, 'another run…'),
        ...others.map((r) => el('option', { value: keyPath(r.run) }, keyText(r.run))));
      const parent = record && record.parent ? keyPath(record.parent) : '';
      picker.value = chosen || (others.some((r) => keyPath(r.run) === parent) ? parent : '');
      if (picker.value && picker.value !== compared) compare(picker.value);
    } catch (error) { showError(error); }
  }

  // The record alone lets the timeline open (its length and prefix); the
  // outline (one pass over the history) fills in phases, bands and
  // anomalies when it arrives.
  // Two runs side by side: their shared history, the first event of each
  // after it, and the state fields that differ (`/v1/diff`).
  let compared = '';
  async function compare(other) {
    compared = other;
    const box = $('#compare');
    if (!other) { box.replaceChildren(); return; }
    try {
      const diff = await api(`/v1/diff?a=${kp}&b=${other}`);
      if (closed || compared !== other) return;
      const otherKey = other.split('/').map(decodeURIComponent).join('/');
      const side = (title, envelope) => el('div', { class: 'side' }, el('h4', {}, title),
        envelope ? [el('div', {}, `seq ${envelope.seq} · ${envelope.event.type}`), el('div', {}, clip(summary(envelope.event), 120))] : el('div', { class: 'hint' }, '(history ends)'));
      box.replaceChildren(
        el('div', { 'data-common': diff.common }, `shared history: ${diff.common} events; first divergence at position ${diff.common}`),
        el('div', { class: 'sides' }, side(keyText(key), diff.a), side(otherKey, diff.b)),
        diff.state_differences.length
          ? el('table', {}, el('tr', {}, el('th', {}, 'state field'), el('th', {}, 'this run'), el('th', {}, 'other')),
            diff.state_differences.map((d) => el('tr', {}, el('td', {}, d.field), el('td', { title: JSON.stringify(d.a) }, clip(JSON.stringify(d.a), 40)), el('td', { title: JSON.stringify(d.b) }, clip(JSON.stringify(d.b), 40)))))
          : el('p', { class: 'hint' }, 'the states agree'));
    } catch (error) { showError(error); }
  }
  $('#compare-with').onchange = (e) => compare(e.target.value);

  async function reload() {
    try {
      record = normal(await api(`/v1/runs/${kp}`));
      record.history_len = await historyLength(record, async (k) => normal(await api(`/v1/runs/${keyPath(k)}`)));
      if (closed) return;
      len = Math.max(len, record.history_len);
      prefix = record.history_len - record.next_seq;
      head();
      render();
      loadOutline();
    } catch (error) { showError(error); }
  }

  async function loadOutline() {
    try {
      outline = await api(`/ui/outline/${kp}`);
      if (closed) return;
      len = Math.max(len, outline.len);
      anomalies = anomalyAt();
      head();
      gantt();
      render();
    } catch (error) { showError(error); }
  }

  function onEnvelope(message) {
    const envelope = JSON.parse(message.data);
    const pos = prefix + envelope.seq;
    cache.set(pos, envelope);
    if (pos >= len) len = pos + 1;
    $('#event-count').textContent = `${len} events · epoch ${envelope.epoch}`;
    render();
    if ($('#follow').checked) timeline.scrollTop = timeline.scrollHeight;
    clearTimeout(refresh);
    refresh = setTimeout(() => { reload(); lineage(); verify(); }, 800);
  }

  function connect(from) {
    source = new EventSource(withToken(`/v1/runs/${kp}/subscribe?from=${from}`));
    source.addEventListener('open', () => { $('#live').className = 'badge on'; $('#live').textContent = '● live'; });
    source.addEventListener('envelope', onEnvelope);
    source.addEventListener('lagged', (message) => { source.close(); connect(JSON.parse(message.data).next_seq); });
    source.addEventListener('end', () => { source.close(); $('#live').className = 'badge off'; $('#live').textContent = 'ended'; });
    source.addEventListener('error', () => { $('#live').className = 'badge off'; $('#live').textContent = 'reconnecting…'; });
  }

  timeline.onscroll = () => render();
  (async () => {
    await reload();
    if (closed || !record) return;
    connect(record.next_seq);
    verify();
    lineage();
  })();
  return () => { closed = true; if (source) source.close(); clearTimeout(refresh); clearTimeout(fetchTimer); timeline.onscroll = null; $('#live').className = 'badge off'; $('#live').textContent = 'not live'; };
}

const PHASE_COLORS = ['#2f5fd0', '#1f8a4c', '#b7791f', '#8a3fb0', '#c23b32', '#127a8a'];
function phaseColor(index) { return PHASE_COLORS[index % PHASE_COLORS.length]; }

api('/v1/health').then((h) => { $('#server').textContent = `${h.server} ${h.version} · api ${h.api}`; }).catch(showError);
route();

// Browser tests of `runjournal ui` (docs/ui.md): a real server on the demo
// database (and a large generated run), driven in Debian's Chromium by
// playwright-core. Screenshots go to $SCREENSHOT_DIR (scripts/browser-test
// sets it to target/ui-screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.RUNJOURNAL_BIN || resolve('../../../target/debug/runjournal');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || resolve('../../../target/ui-screenshots');
const LARGE = Number(process.env.LARGE_EVENTS || 20000);
mkdirSync(SHOTS, { recursive: true });

const dir = mkdtempSync(join(tmpdir(), 'runjournal-ui-'));
const db = join(dir, 'demo.db');
let server;
let url;
let browser;
let page;

/** Polls `check` until it returns a truthy value or `ms` pass. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(path, options = {}) {
  const response = await fetch(url + path.replace(/^\//, ''), { ...options, headers: { 'content-type': 'application/json' } });
  const body = await response.json();
  assert.ok(response.ok, `${path}: ${JSON.stringify(body)}`);
  return body;
}

const runPath = (k) => [k.goal, String(k.episode), k.agent].map(encodeURIComponent).join('/');

/** A JSON lines file of one run with `n` events (steps in phases). */
function largeRun(n) {
  const run = { goal: 'large-run', episode: 0, agent: 'a' };
  const lines = [JSON.stringify({ run, seq: 0, event: { type: 'run_started', meta: { model: 'big' } } })];
  let phase = 0;
  for (let seq = 1; seq < n; seq++) {
    let event;
    if (seq % 1000 === 1) event = { type: 'phase_started', index: phase, name: `phase-${phase}` };
    else if (seq % 1000 === 0) { event = { type: 'phase_completed', index: phase, name: `phase-${phase}`, output: 'ok' }; phase++; }
    else event = { type: 'step', messages: [{ role: 'assistant', content: `step ${seq}` }] };
    lines.push(JSON.stringify({ run, seq, event }));
  }
  return lines.join('\n') + '\n';
}

/** A short run whose seq 2 the fold records as an anomaly (a compaction_done with none started). */
function anomalousRun() {
  const run = { goal: 'odd-run', episode: 0, agent: 'a' };
  const events = [
    { type: 'run_started', meta: {} },
    { type: 'step', messages: [{ role: 'user', content: 'go' }] },
    { type: 'compaction_done', source: 'structured', summary: 'nothing was compacting' },
  ];
  return events.map((event, seq) => JSON.stringify({ run, seq, event })).join('\n') + '\n';
}

before(async () => {
  const demo = spawnSync(BIN, ['--db', db, 'demo'], { encoding: 'utf8' });
  assert.equal(demo.status, 0, demo.stderr);
  for (const [name, text] of [['large.jsonl', largeRun(LARGE)], ['odd.jsonl', anomalousRun()]]) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const imported = spawnSync(BIN, ['--db', db, 'import', file], { encoding: 'utf8' });
    assert.equal(imported.status, 0, imported.stderr);
  }
  server = spawn(BIN, ['--db', db, 'ui', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout.on('data', (chunk) => { out += chunk; });
  url = await until(() => (out.match(/at (http:\/\/\S+)/) || [])[1], 20000, 'the ui to print its URL');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    server.kill('SIGTERM');
    await until(() => server.exitCode !== null || server.signalCode !== null, 30000, 'the ui to stop');
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the page renders the run list', async () => {
  await page.goto(url);
  const rows = page.locator('#runs tbody tr');
  await rows.first().waitFor();
  const { runs } = await api('/v1/runs');
  await until(async () => (await rows.count()) === runs.length, 5000, 'every run listed');
  const demo = runs.find((r) => r.key.goal.startsWith('demo-'));
  const row = page.locator(`#runs tbody tr[data-run="${demo.key.goal}/0/${demo.key.agent}"]`);
  assert.match(await row.innerText(), /completed/);
  assert.match(await row.locator('td.events').innerText(), new RegExp(`^${demo.head.next_seq}$`));
  // Filters: by status and by a search on the key.
  await page.selectOption('#filter-status', 'completed');
  await until(async () => (await page.locator('#runs-count').innerText()).startsWith(`${runs.filter((r) => r.status === 'completed').length} of`), 5000, 'the status filter');
  await page.selectOption('#filter-status', '');
  await page.fill('#filter-search', 'large-run');
  await until(async () => (await rows.count()) === 1, 5000, 'the search');
  await page.fill('#filter-search', '');
  await until(async () => (await rows.count()) === runs.length, 5000, 'the search to clear');
  await page.screenshot({ path: join(SHOTS, 'runs.png') });
});

test('a timeline renders and clicking an event shows the state as of that seq', async () => {
  const { runs } = await api('/v1/runs');
  const demo = runs.find((r) => r.key.goal.startsWith('demo-'));
  await page.goto(url);
  await page.locator(`#runs tbody tr[data-run="${demo.key.goal}/0/${demo.key.agent}"]`).click();
  await page.locator('#spacer .ev[data-seq="0"]').waitFor();
  await until(async () => (await page.locator('#integrity').innerText()).includes('verified'), 10000, 'the integrity badge');
  assert.ok((await page.locator('#gantt .bar').count()) >= 3, 'phases drawn in the overview');
  assert.ok((await page.locator('#spacer .ev.death').count()) >= 1, 'the death is a band');
  assert.ok((await page.locator('#spacer .ev.epoch-start').count()) >= 1, 'the resume starts an epoch band');
  assert.ok((await page.locator('#spacer .ev.boundary').count()) >= 1, 'the compaction is a boundary');
  const seq = 12;
  await page.locator(`#spacer .ev[data-seq="${seq}"]`).click();
  await page.locator(`#state[data-seq="${seq}"]`).waitFor();
  const expected = await api(`/v1/runs/${runPath(demo.key)}/state?at=${seq}`);
  assert.equal(await page.locator('#state dd[data-field="last seq"]').innerText(), String(expected.last_seq));
  assert.equal(await page.locator('#state dd[data-field="iteration"]').innerText(), String(expected.iteration));
  assert.equal(await page.locator('#transcript .msg').count(), expected.transcript.length);
  await page.screenshot({ path: join(SHOTS, 'timeline.png') });
});

test('a live run gains events on screen while another process appends', async () => {
  const run = { goal: 'live-goal', episode: 0, agent: 'worker' };
  await api('/v1/runs', { method: 'POST', body: JSON.stringify({ run, meta: { model: 'm' } }) });
  await page.goto(`${url}#/run/${runPath(run)}`);
  await page.locator('#spacer .ev[data-seq="0"]').waitFor();
  await until(async () => (await page.locator('#live').innerText()).includes('live'), 10000, 'the subscription');
  await page.evaluate(() => { window.notReloaded = true; });
  const appender = spawn(process.execPath, ['append.mjs', url, run.goal, String(run.episode), run.agent, '5'], { stdio: 'inherit' });
  await page.locator('#spacer .ev[data-seq="5"]').waitFor({ timeout: 20000 });
  await until(() => appender.exitCode !== null, 20000, 'the appender');
  assert.equal(appender.exitCode, 0);
  assert.match(await page.locator('#spacer .ev[data-seq="5"]').innerText(), /live step 4/);
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload');
  await until(async () => (await page.locator('#event-count').innerText()).startsWith('6 events'), 5000, 'the event count');
  await page.screenshot({ path: join(SHOTS, 'live.png') });
});

test('a fork appears in the lineage', async () => {
  const parent = { goal: 'live-goal', episode: 0, agent: 'worker' };
  const child = { goal: 'live-goal', episode: 1, agent: 'worker' };
  await api(`/v1/runs/${runPath(parent)}/fork`, { method: 'POST', body: JSON.stringify({ at_seq: 3, child }) });
  await page.goto(`${url}#/run/${runPath(child)}`);
  const nested = page.locator(`#lineage li[data-run="live-goal/0/worker"] li[data-run="live-goal/1/worker"]`);
  await nested.waitFor({ timeout: 10000 });
  assert.match(await nested.innerText(), /fork @3/);
  // The child's timeline starts with the parent's prefix (positions 0..3), then its own events.
  await page.locator('#spacer .ev.inherited').first().waitFor();
  assert.equal(await page.locator('#spacer .ev.inherited').count(), 4);
  // Side by side with its parent: four shared events, then the parent goes on.
  const compared = page.locator('#compare [data-common="4"]');
  await compared.waitFor({ timeout: 10000 });
  assert.match(await page.locator('#compare .side').nth(1).innerText(), /seq 4 · step/);
  await page.screenshot({ path: join(SHOTS, 'lineage.png') });
});

test('an anomaly is highlighted with its rule', async () => {
  const run = { goal: 'odd-run', episode: 0, agent: 'a' };
  await page.goto(`${url}#/run/${runPath(run)}`);
  const row = page.locator('#spacer .ev.anomaly[data-seq="2"]');
  await row.waitFor({ timeout: 10000 });
  assert.match(await row.innerText(), /compaction_done_without_start/);
  assert.equal(await page.locator('#spacer .ev.anomaly').count(), 1);
});

test('a large run opens fast and scrolls by fetching ranges', async () => {
  const run = { goal: 'large-run', episode: 0, agent: 'a' };
  const started = Date.now();
  await page.goto(`${url}#/run/${runPath(run)}`);
  await page.locator('#spacer .ev[data-seq="0"]').waitFor();
  const opened = Date.now() - started;
  console.log(`# large run (${LARGE} events) opened in ${opened} ms`);
  assert.ok(opened < 10000, `opened in ${opened} ms`);
  // Only the visible window is in the DOM.
  assert.ok((await page.locator('#spacer .ev').count()) < 200);
  await page.locator('#timeline').evaluate((node) => { node.scrollTop = node.scrollHeight; });
  await page.locator(`#spacer .ev[data-seq="${LARGE - 1}"]`).waitFor({ timeout: 20000 });
  assert.ok((await page.locator('#spacer .ev').count()) < 200);
  await page.screenshot({ path: join(SHOTS, 'large.png') });
});

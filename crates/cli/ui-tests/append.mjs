// Another process that appends to a live run through the served API:
// node append.mjs URL GOAL EPISODE AGENT COUNT
// Appends COUNT step events, one request each, at the run's current epoch
// and next seq (read from the run's record), then exits.
const [url, goal, episode, agent, count] = process.argv.slice(2);
const path = [goal, episode, agent].map(encodeURIComponent).join('/');
const record = await (await fetch(`${url}v1/runs/${path}`)).json();
let seq = record.head.next_seq;
for (let i = 0; i < Number(count); i++) {
  const response = await fetch(`${url}v1/runs/${path}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      epoch: record.head.epoch,
      expected_seq: seq,
      events: [{ type: 'step', messages: [{ role: 'assistant', content: `live step ${i}` }] }],
    }),
  });
  const body = await response.json();
  if (!response.ok) {
    console.error(JSON.stringify(body));
    process.exit(1);
  }
  seq = body.handle.next_seq;
  await new Promise((resolve) => setTimeout(resolve, 150));
}
console.log(`appended ${count} events; next seq ${seq}`);

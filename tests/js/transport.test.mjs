// Sending: views at once, clicks batched, retries with backoff, unload flushing, no throws.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { beaconBody, fakeBrowser, settle, tracking } from './harness.mjs';

const { createTracker } = tracking;
const CLICKS_URL = 'https://svc.example/api/v1/projects/track-clicks/';

function setup(browser = {}, options = {}) {
  const fake = fakeBrowser(browser);
  const errors = [];
  const tracker = createTracker({ baseUrl: 'https://svc.example/', onError: (e) => errors.push(e),
    ...options }, fake.env);
  return { ...fake, tracker, errors };
}

test('a view is sent at once with its source, credentials and an idempotency key', async () => {
  const { tracker, calls } = setup();
  const result = tracker.trackProjectView(42, 'explore');
  await settle();
  assert.equal(calls.length, 1);
  const [call] = calls;
  assert.equal(call.url, 'https://svc.example/api/v1/projects/42/track-view/');
  assert.equal(call.method, 'POST');
  assert.deepEqual(call.json, { source: 'explore' });
  assert.equal(call.credentials, 'include');
  assert.equal(call.keepalive, true);
  assert.equal(call.headers['Content-Type'], 'application/json');
  assert.equal(call.headers['Idempotency-Key'], 'key-1');
  assert.equal(call.headers.Authorization, undefined);
  assert.equal(await result, 'recorded');
});

test('a view without a source takes it from the referrer', async () => {
  const { tracker, calls } = setup({ referrer: 'https://site.example/search?q=x' });
  tracker.trackProjectView('7');
  await settle();
  assert.deepEqual(calls[0].json, { source: 'search' });
  assert.match(calls[0].url, /\/projects\/7\/track-view\/$/);
});

test('the server answers deduplicated and not found come back to the caller', async () => {
  const { tracker } = setup({ script: [{ status: 200, body: { status: 'deduplicated' } }, 404] });
  assert.equal(await tracker.trackProjectView(1, 'direct'), 'deduplicated');
  assert.equal(await tracker.trackProjectView(2, 'direct'), 'not_found');
});

test('a known bot\'s call is reported as ignored, not retried', async () => {
  const { tracker, calls, clock } = setup({ script: [
    { status: 200, body: { status: 'ignored' } },
    { status: 200, body: { count: 0, skipped: 0, status: 'ignored' } },
  ] });
  assert.equal(await tracker.trackProjectView(1, 'direct'), 'ignored');
  tracker.trackProjectClick(1, 'search', 0);
  await clock.advance(1000);
  await clock.advance(60000);
  assert.equal(calls.length, 2);
});

test('token and getToken become a bearer header; sessionKey an X-Session-Key', async () => {
  const { tracker, calls } = setup({}, { token: 'jwt-1', sessionKey: 'sess' });
  await tracker.trackProjectView(1, 'direct');
  assert.equal(calls[0].headers.Authorization, 'Bearer jwt-1');
  assert.equal(calls[0].headers['X-Session-Key'], 'sess');
  tracker.configure({ token: null, getToken: async () => 'jwt-2' });
  await tracker.trackProjectView(1, 'direct');
  assert.equal(calls[1].headers.Authorization, 'Bearer jwt-2');
});

test('invalid input is ignored without a request or an exception', async () => {
  const { tracker, calls, errors, clock } = setup();
  assert.equal(await tracker.trackProjectView(0, 'direct'), 'invalid');
  assert.equal(await tracker.trackProjectView('12abc', 'direct'), 'invalid');
  assert.equal(await tracker.trackProjectView(1, 'homepage'), 'invalid');
  assert.equal(await tracker.trackProjectView('9223372036854775808', 'direct'), 'invalid');
  assert.equal(tracker.trackProjectClick(1, 'explore'), false);
  assert.equal(tracker.trackProjectClick(-3, 'search'), false);
  assert.equal(tracker.trackProjectClick(1, 'search', -1), false);
  assert.equal(tracker.trackProjectClick(1, 'search', 1.5), false);
  await clock.advance(5000);
  assert.equal(calls.length, 0);
  assert.equal(errors.length, 8);
});

test('clicks wait for the flush delay and go out in one batch', async () => {
  const { tracker, calls, clock } = setup();
  assert.equal(tracker.trackProjectClick(1, 'explore_trending', 0), true);
  tracker.trackProjectClick('2', 'explore_trending', 3);
  tracker.trackProjectClick(3n, 'related');
  await clock.advance(999);
  assert.equal(calls.length, 0);
  await clock.advance(1);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, CLICKS_URL);
  assert.deepEqual(calls[0].json, { clicks: [
    { project_id: 1, source: 'explore_trending', position: 0 },
    { project_id: 2, source: 'explore_trending', position: 3 },
    { project_id: 3, source: 'related' },
  ] });
  await clock.advance(60000);
  assert.equal(calls.length, 1);
});

test('a full batch of 50 is sent at once and larger bursts are split', async () => {
  const { tracker, calls, clock } = setup();
  for (let i = 0; i < 120; i += 1) tracker.trackProjectClick(i + 1, 'explore_new', i);
  await settle();
  assert.deepEqual(calls.map((c) => c.json.clicks.length), [50, 50]);
  await clock.advance(1000);
  assert.deepEqual(calls.map((c) => c.json.clicks.length), [50, 50, 20]);
  const positions = calls.flatMap((c) => c.json.clicks.map((x) => x.position));
  assert.deepEqual(positions, Array.from({ length: 120 }, (_, i) => i));
  assert.equal(new Set(calls.map((c) => c.headers['Idempotency-Key'])).size, 3);
});

test('batchSize is capped at the endpoint limit', async () => {
  const { tracker, calls } = setup({}, { batchSize: 500 });
  for (let i = 0; i < 50; i += 1) tracker.trackProjectClick(1, 'search', i);
  await settle();
  assert.equal(calls.length, 1);
});

test('5xx and network errors are retried with backoff, the same key, and stop once acknowledged', async () => {
  const { tracker, calls, clock } = setup({ script: [503, new TypeError('Failed to fetch'), 201] });
  tracker.trackProjectClick(5, 'explore_news', 2);
  await clock.advance(1000);
  assert.equal(calls.length, 1);
  await clock.advance(250); // first retry after 500 ms * (0.5 + 0.5 * random)
  assert.equal(calls.length, 1);
  await clock.advance(125);
  assert.equal(calls.length, 2);
  await clock.advance(750); // second retry: 1000 ms base, jittered to 750
  assert.equal(calls.length, 3);
  assert.equal(new Set(calls.map((c) => c.headers['Idempotency-Key'])).size, 1);
  assert.deepEqual(calls[2].json, calls[0].json);
  await clock.advance(600000);
  tracker.flushAtUnload();
  assert.equal(calls.length, 3);
  assert.equal(tracker.pending().retrying, 0);
});

test('backoff doubles, is jittered within [d/2, d], and is capped', async () => {
  for (const random of [0, 0.999]) {
    const { env, clock } = fakeBrowser({ script: Array(9).fill(500) });
    env.random = () => random;
    const tracker = createTracker({ retryBaseMs: 100, retryMaxMs: 1000, maxRetries: 6 }, env);
    tracker.trackProjectView(1, 'direct');
    await clock.advance(100000);
    const bases = [100, 200, 400, 800, 1000, 1000];
    assert.deepEqual(clock.delays, bases.map((d) => Math.round(d / 2 + (d / 2) * random)));
  }
});

test('retries are bounded: after maxRetries the event is given up and reported', async () => {
  const { tracker, calls, clock, errors } = setup({ script: Array(10).fill(500) }, { maxRetries: 3 });
  const result = tracker.trackProjectView(1, 'direct');
  await clock.advance(600000);
  assert.equal(calls.length, 4);
  assert.equal(await result, 'failed');
  assert.equal(errors.at(-1).reason, 'gave up');
});

test('429 is retried no sooner than Retry-After', async () => {
  const { tracker, calls, clock } = setup({ script: [{ status: 429, headers: { 'Retry-After': '3' } }] });
  tracker.trackProjectView(1, 'direct');
  await clock.advance(2999);
  assert.equal(calls.length, 1);
  await clock.advance(1);
  assert.equal(calls.length, 2);
});

test('4xx answers are not retried', async () => {
  for (const status of [400, 401, 404, 413, 422]) {
    const { tracker, calls, clock } = setup({ script: [status] });
    tracker.trackProjectClick(1, 'search', 0);
    await clock.advance(600000);
    assert.equal(calls.length, 1, String(status));
  }
});

test('pagehide sends queued clicks with a text/plain beacon, once', async () => {
  const { tracker, calls, beacons, clock, pagehide } = setup();
  tracker.trackProjectClick(9, 'explore_for_you', 4);
  pagehide();
  assert.equal(beacons.length, 1);
  assert.equal(beacons[0].url, CLICKS_URL);
  assert.equal(beacons[0].blob.type, 'text/plain;charset=utf-8');
  assert.deepEqual(await beaconBody(beacons[0]),
    { clicks: [{ project_id: 9, source: 'explore_for_you', position: 4 }] });
  pagehide();
  await clock.advance(60000);
  assert.equal(beacons.length, 1);
  assert.equal(calls.length, 0);
});

test('a hidden page flushes too; becoming visible does not', async () => {
  const { tracker, beacons, document, hide } = setup();
  tracker.trackProjectClick(1, 'search', 0);
  document.visibilityState = 'visible';
  document.dispatchEvent(new Event('visibilitychange'));
  assert.equal(beacons.length, 0);
  hide();
  assert.equal(beacons.length, 1);
});

test('at unload, batches waiting for a retry are sent instead of retried later', async () => {
  const { tracker, calls, beacons, clock, pagehide } = setup({ script: [new TypeError('offline')] });
  tracker.trackProjectClick(1, 'explore_new', 1);
  await clock.advance(1000);
  assert.equal(tracker.pending().retrying, 1);
  tracker.trackProjectClick(2, 'explore_new', 2);
  pagehide();
  await settle();
  // the retried batch keeps its key, so it goes by keepalive fetch; the new one by beacon
  assert.equal(calls.length, 2);
  assert.equal(calls[1].keepalive, true);
  assert.equal(calls[1].headers['Idempotency-Key'], calls[0].headers['Idempotency-Key']);
  assert.deepEqual(calls[1].json.clicks, [{ project_id: 1, source: 'explore_new', position: 1 }]);
  assert.equal(beacons.length, 1);
  assert.deepEqual((await beaconBody(beacons[0])).clicks,
    [{ project_id: 2, source: 'explore_new', position: 2 }]);
  await clock.advance(600000);
  assert.equal(calls.length, 2);
});

test('with a token, unload uses a keepalive fetch carrying the Authorization header', async () => {
  const { tracker, calls, beacons, pagehide } = setup({}, { getToken: () => 'jwt-9' });
  tracker.trackProjectClick(1, 'profile', 0);
  pagehide();
  await settle();
  assert.equal(beacons.length, 0);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].keepalive, true);
  assert.equal(calls[0].headers.Authorization, 'Bearer jwt-9');
});

test('a refused beacon falls back to a keepalive fetch', async () => {
  const { tracker, calls, beacons, pagehide } = setup({ beaconResult: false });
  tracker.trackProjectClick(1, 'profile', 0);
  pagehide();
  await settle();
  assert.equal(beacons.length, 1);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].keepalive, true);
});

test('in-flight requests are left to their keepalive fetch at unload', async () => {
  let release;
  const { tracker, calls, beacons, clock, pagehide } = setup({
    script: [() => new Promise((resolve) => { release = resolve; })],
  });
  tracker.trackProjectClick(1, 'search', 0);
  await clock.advance(1000);
  assert.equal(calls.length, 1);
  pagehide();
  assert.equal(beacons.length, 0);
  release(new Response('{"count":1,"skipped":0}', { status: 201 }));
  await clock.advance(600000);
  assert.equal(calls.length, 1);
});

test('nothing escapes to the page when the browser APIs throw', async () => {
  const { env, clock } = fakeBrowser();
  env.fetch = () => { throw new Error('sync boom'); };
  env.sendBeacon = () => { throw new Error('beacon boom'); };
  const tracker = createTracker({ maxRetries: 1, getToken: () => { throw new Error('t'); },
    onError: () => { throw new Error('onError boom'); } }, env);
  const view = tracker.trackProjectView(1, 'direct');
  assert.equal(tracker.trackProjectClick(1, 'search', 0), true);
  env.window.dispatchEvent(new Event('pagehide'));
  await clock.advance(600000);
  assert.equal(await view, 'failed');
  tracker.configure(null);
  assert.equal(tracker.getViewSourceFromReferrer(42), 'direct');
});

test('the module tracker is configurable and its functions never throw', async () => {
  tracking.configure({ baseUrl: 'http://127.0.0.1:9', maxRetries: 0 });
  assert.equal(tracking.trackProjectClick('x', 'search'), false);
  assert.equal(await tracking.trackProjectView('nope'), 'invalid');
  assert.equal(tracking.getViewSourceFromReferrer(''), 'direct');
});

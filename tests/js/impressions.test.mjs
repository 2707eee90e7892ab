// Impressions: cards seen long enough are reported once, batched through track-impressions,
// retried and flushed at unload like clicks; A/B variants ride along on clicks and impressions.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fakeBrowser, settle, tracking } from './harness.mjs';

const { createTracker } = tracking;
const IMPRESSIONS_URL = 'https://svc.example/api/v1/projects/track-impressions/';

/** A card element: attributes, selector matching by attribute presence, no layout. */
class FakeCard {
  nodeType = 1;
  constructor(attrs) { this.attrs = attrs; }
  getAttribute(name) { return name in this.attrs ? String(this.attrs[name]) : null; }
  matches(selector) { return selector === '[data-project-id]' && 'data-project-id' in this.attrs; }
  querySelectorAll() { return []; }
}

class FakeContainer {
  cards = [];
  querySelectorAll(selector) { return this.cards.filter((c) => c.matches(selector)); }
}

/** IntersectionObserver whose intersections the test drives; instances are kept. */
function fakeObservers() {
  const intersection = [];
  const mutation = [];
  class IO {
    constructor(callback, options) {
      this.callback = callback;
      this.options = options;
      this.targets = new Set();
      intersection.push(this);
    }
    observe(el) { this.targets.add(el); }
    unobserve(el) { this.targets.delete(el); }
    disconnect() { this.targets.clear(); }
    /** The browser reports `el` at `ratio` of its area in view. */
    show(el, ratio = 1) {
      if (this.targets.has(el)) {
        this.callback([{ target: el, isIntersecting: ratio > 0, intersectionRatio: ratio }], this);
      }
    }
  }
  class MO {
    constructor(callback) { this.callback = callback; mutation.push(this); }
    observe(target, options) { this.target = target; this.options = options; }
    disconnect() { this.target = null; }
    add(...nodes) { if (this.target) this.callback([{ addedNodes: nodes }], this); }
  }
  return { IO, MO, intersection, mutation };
}

function setup(browser = {}, options = {}) {
  const fake = fakeBrowser(browser);
  const observers = fakeObservers();
  fake.env.IntersectionObserver = observers.IO;
  fake.env.MutationObserver = observers.MO;
  const errors = [];
  const tracker = createTracker({ baseUrl: 'https://svc.example/', onError: (e) => errors.push(e),
    ...options }, fake.env);
  return { ...fake, ...observers, tracker, errors };
}

function feed(...ids) {
  const container = new FakeContainer();
  container.cards = ids.map((id) => new FakeCard({ 'data-project-id': id }));
  return container;
}

test('a card in view for a second is reported once, batched with its position', async () => {
  const { tracker, calls, clock, intersection } = setup();
  const container = feed(11, 12, 13);
  tracker.observeImpressions(container, { source: 'explore_trending' });
  const [io] = intersection;
  assert.deepEqual(io.options.threshold, [0.5]);
  io.show(container.cards[0]);
  io.show(container.cards[2]);
  await clock.advance(999);
  assert.equal(tracker.pending().queued, 0); // not a second yet
  await clock.advance(1); // seen: queued, then sent after the flush delay
  await clock.advance(1000);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, IMPRESSIONS_URL);
  assert.deepEqual(calls[0].json, { impressions: [
    { project_id: 11, source: 'explore_trending', position: 0 },
    { project_id: 13, source: 'explore_trending', position: 2 },
  ] });
  assert.ok(calls[0].headers['Idempotency-Key']);
  io.show(container.cards[0]); // scrolled back: already counted
  await clock.advance(5000);
  assert.equal(calls.length, 1);
});

test('a card scrolled past too fast, or less than half visible, is not an impression', async () => {
  const { tracker, calls, clock, intersection } = setup();
  const container = feed(1, 2);
  tracker.observeImpressions(container, { source: 'search' });
  const [io] = intersection;
  io.show(container.cards[0]);
  await clock.advance(400);
  io.show(container.cards[0], 0); // gone again before the second was up
  io.show(container.cards[1], 0.3);
  await clock.advance(10000);
  assert.equal(calls.length, 0);
  io.show(container.cards[0]); // back, and this time it stays
  await clock.advance(2000);
  assert.deepEqual(calls.map((c) => c.json.impressions.map((i) => i.project_id)), [[1]]);
});

test('positions, variants and ids come from attributes or the caller\'s functions', async () => {
  const { tracker, calls, clock, intersection } = setup();
  const container = new FakeContainer();
  container.cards = [new FakeCard({ 'data-project-id': '7', 'data-position': '40' }),
    new FakeCard({ 'data-project-id': 'x' })];
  tracker.observeImpressions(container, { source: 'explore_for_you', variant: 'ranker-v2',
    minVisibleMs: 0 });
  const custom = feed(1);
  tracker.observeImpressions(custom, { source: 'related', getProjectId: () => 99,
    getPosition: () => 4, getVariant: () => 'control', minVisibleMs: 0 });
  intersection[0].show(container.cards[0]);
  intersection[0].show(container.cards[1]); // invalid id: refused here, never sent
  intersection[1].show(custom.cards[0]);
  await clock.advance(1000);
  assert.deepEqual(calls[0].json.impressions, [
    { project_id: 7, source: 'explore_for_you', position: 40, variant: 'ranker-v2' },
    { project_id: 99, source: 'related', position: 4, variant: 'control' },
  ]);
});

test('cards added later (infinite scroll) are observed too', async () => {
  const { tracker, calls, clock, intersection, mutation } = setup();
  const container = feed(1);
  tracker.observeImpressions(container, { source: 'explore_new', minVisibleMs: 0 });
  const late = new FakeCard({ 'data-project-id': 5, 'data-position': 1 });
  container.cards.push(late);
  mutation[0].add(late, { nodeType: 3 }); // a text node is ignored
  intersection[0].show(late);
  await clock.advance(1000);
  assert.deepEqual(calls[0].json.impressions, [{ project_id: 5, source: 'explore_new', position: 1 }]);
});

test('a hidden page sees nothing; disconnect stops reporting', async () => {
  const { tracker, calls, clock, intersection, document } = setup();
  const container = feed(1, 2);
  const handle = tracker.observeImpressions(container, { source: 'profile' });
  const [io] = intersection;
  io.show(container.cards[0]);
  document.visibilityState = 'hidden';
  await clock.advance(1500);
  document.visibilityState = 'visible';
  io.show(container.cards[1]);
  handle.disconnect();
  await clock.advance(5000);
  assert.equal(calls.length, 0);
  assert.equal(clock.pendingTimers, 0);
});

test('impressions are retried after a 503 and flushed at page unload', async () => {
  const { tracker, calls, clock, pagehide, beacons } = setup({ script: [503, 201] });
  tracker.trackImpression(1, 'search', 0);
  await clock.advance(1000); // first attempt: 503, waits for a retry
  assert.equal(calls.length, 1);
  await clock.advance(60000);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].headers['Idempotency-Key'], calls[0].headers['Idempotency-Key']);
  tracker.trackImpression(2, 'search', 1);
  tracker.trackProjectClick(2, 'search', 1, 'b');
  pagehide();
  await settle();
  assert.equal(beacons.length, 2); // clicks and impressions, each in its own request
  const urls = beacons.map((b) => b.url).sort();
  assert.deepEqual(urls, ['https://svc.example/api/v1/projects/track-clicks/', IMPRESSIONS_URL]);
});

test('a full batch of 50 goes at once; invalid input is refused with a reason', async () => {
  const { tracker, calls, errors } = setup();
  for (let i = 0; i < 50; i += 1) assert.equal(tracker.trackImpression(1, 'search', i), true);
  await settle();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].json.impressions.length, 50);
  assert.equal(tracker.trackImpression(1, 'feed', 0), false);
  assert.equal(tracker.trackImpression(1, 'search', -1), false);
  assert.equal(tracker.trackImpression(1, 'search', 0, 'Not Valid'), false);
  assert.equal(tracker.trackProjectClick(1, 'search', 0, 'x'.repeat(33)), false);
  assert.deepEqual(errors.map((e) => `${e.kind}: ${e.reason}`), [
    'impression: invalid source', 'impression: invalid position', 'impression: invalid variant',
    'click: invalid variant']);
});

test('a click carries its variant', async () => {
  const { tracker, calls, clock } = setup();
  tracker.trackProjectClick(3, 'explore_for_you', 2, 'ranker-v2');
  await clock.advance(1000);
  assert.deepEqual(calls[0].json.clicks, [
    { project_id: 3, source: 'explore_for_you', position: 2, variant: 'ranker-v2' }]);
});

test('without IntersectionObserver or with a bad source nothing breaks', () => {
  const fake = fakeBrowser();
  const errors = [];
  const tracker = createTracker({ onError: (e) => errors.push(e) },
    { ...fake.env, IntersectionObserver: null });
  const handle = tracker.observeImpressions(feed(1), { source: 'search' });
  handle.observe({});
  handle.disconnect();
  tracker.observeImpressions(feed(1), { source: 'nowhere' });
  tracker.observeImpressions(null, { source: 'search' });
  assert.deepEqual(errors.map((e) => e.reason),
    ['no IntersectionObserver', 'invalid source', 'no container']);
});

// respectDoNotTrack: under Global Privacy Control or Do Not Track nothing leaves the page;
// without the option, or without a signal, events go out as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fakeBrowser, tracking } from './harness.mjs';

const { createTracker } = tracking;

function setup(browser = {}, options = {}) {
  const fake = fakeBrowser(browser);
  const observers = [];
  fake.env.IntersectionObserver = class {
    constructor() { observers.push(this); }
    observe() {}
    unobserve() {}
    disconnect() {}
  };
  const errors = [];
  const tracker = createTracker({ baseUrl: 'https://svc.example', onError: (e) => errors.push(e),
    ...options }, fake.env);
  return { ...fake, tracker, errors, observers };
}

const feed = { querySelectorAll: () => [] };

/** A view, a click and an impression flushed, then a click beaconed at unload: what went out. */
async function trackEverything({ tracker, clock, calls, beacons, pagehide, observers }) {
  const view = await tracker.trackProjectView(1, 'direct');
  const click = tracker.trackProjectClick(1, 'search', 0);
  const impression = tracker.trackImpression(2, 'search', 1);
  tracker.observeImpressions(feed, { source: 'search' });
  await clock.advance(1000);
  tracker.trackProjectClick(3, 'search', 2);
  pagehide();
  await clock.advance(60000);
  return { view, click, impression, fetches: calls.length, beacons: beacons.length,
    observers: observers.length };
}

const SIGNALS = {
  'Global Privacy Control': { navigator: { globalPrivacyControl: true } },
  'Do Not Track': { navigator: { doNotTrack: '1' } },
  'old Firefox\'s Do Not Track': { navigator: { doNotTrack: 'yes' } },
  'old IE\'s Do Not Track': { navigator: { msDoNotTrack: '1' } },
  'old Safari\'s Do Not Track': { windowDoNotTrack: '1' },
};

for (const [name, browser] of Object.entries(SIGNALS)) {
  test(`with respectDoNotTrack, ${name} means nothing is sent and every call resolves`, async () => {
    const fake = setup(browser, { respectDoNotTrack: true });
    const outcome = await trackEverything(fake);
    assert.deepEqual(outcome,
      { view: 'opted_out', click: false, impression: false, fetches: 0, beacons: 0, observers: 0 });
    assert.deepEqual(fake.tracker.pending(), { queued: 0, retrying: 0 });
    assert.deepEqual(fake.errors, []); // a visitor's choice is not an error
  });

  test(`without respectDoNotTrack, ${name} changes nothing`, async () => {
    const outcome = await trackEverything(setup(browser));
    assert.deepEqual(outcome,
      { view: 'recorded', click: true, impression: true, fetches: 3, beacons: 1, observers: 1 });
  });
}

const NO_SIGNAL = {
  'no signal at all': { navigator: {} },
  'GPC false and DNT "0"': { navigator: { globalPrivacyControl: false, doNotTrack: '0' } },
  'DNT unset': { navigator: { doNotTrack: null, msDoNotTrack: 'unspecified' },
    windowDoNotTrack: null },
  'no navigator': { navigator: null },
};

for (const [name, browser] of Object.entries(NO_SIGNAL)) {
  test(`with respectDoNotTrack and ${name}, events are sent as before`, async () => {
    const outcome = await trackEverything(setup(browser, { respectDoNotTrack: true }));
    assert.deepEqual(outcome,
      { view: 'recorded', click: true, impression: true, fetches: 3, beacons: 1, observers: 1 });
  });
}

test('events queued before respectDoNotTrack was set are dropped, not sent', async () => {
  const { tracker, clock, calls, beacons, pagehide } = setup(
    { navigator: { globalPrivacyControl: true }, script: [503] });
  tracker.trackProjectClick(1, 'search', 0);
  await clock.advance(1000); // the batch failed and waits for its retry
  tracker.trackImpression(1, 'search', 0);
  assert.deepEqual(tracker.pending(), { queued: 1, retrying: 1 });
  tracker.configure({ respectDoNotTrack: true });
  await clock.advance(60000);
  pagehide();
  assert.equal(calls.length, 1); // only the attempt made before the option
  assert.equal(beacons.length, 0);
  assert.deepEqual(tracker.pending(), { queued: 0, retrying: 0 });
});

test('a flush under an opt-out resolves at once', async () => {
  const { tracker, calls } = setup({ navigator: { doNotTrack: '1' } });
  tracker.trackProjectClick(1, 'search', 0);
  tracker.configure({ respectDoNotTrack: true });
  await tracker.flush();
  assert.equal(calls.length, 0);
});

test('invalid input is still reported as invalid under an opt-out', async () => {
  const { tracker, errors } = setup({ navigator: { globalPrivacyControl: true } },
    { respectDoNotTrack: true });
  assert.equal(await tracker.trackProjectView(0, 'direct'), 'invalid');
  assert.equal(errors.length, 1);
});

test('a navigator whose properties throw counts as no signal', async () => {
  const navigator = {};
  Object.defineProperty(navigator, 'globalPrivacyControl', { get() { throw new Error('no'); } });
  const { tracker, calls } = setup({ navigator }, { respectDoNotTrack: true });
  assert.equal(await tracker.trackProjectView(1, 'direct'), 'recorded');
  assert.equal(calls.length, 1);
});

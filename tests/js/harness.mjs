// Fakes of the browser APIs the tracking client uses: a manual clock, a scripted fetch,
// sendBeacon, page lifecycle events. The module under test is the file the service serves.
import { readFileSync } from 'node:fs';

export const MODULE_PATH = new URL('../../service/static/tracking.js', import.meta.url);
export const MODULE_SOURCE = readFileSync(MODULE_PATH, 'utf8');

// An ES module as it is: the npm package's package.json beside it says "type": "module".
export const tracking = await import(MODULE_PATH.href);

/** Let pending promise callbacks run. */
export async function settle() {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export class Clock {
  now = 0;
  #timers = new Map();
  #next = 1;
  delays = [];

  setTimeout = (fn, ms) => {
    const id = this.#next++;
    this.delays.push(ms);
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers.delete(id);
  };

  get pendingTimers() {
    return this.#timers.size;
  }

  /** Move time forward, firing due timers in order and letting promises settle between them. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      await settle();
      let due = null;
      for (const [id, t] of this.#timers) {
        if (t.at <= end && (due === null || t.at < due[1].at)) due = [id, t];
      }
      if (due === null) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
    await settle();
  }
}

/** A fetch answering from a script: numbers are statuses, Errors are network failures. */
export function scriptedFetch(script = []) {
  const calls = [];
  const steps = [...script];
  const fetch = (url, init) => {
    const call = { url, ...init, json: JSON.parse(init.body) };
    calls.push(call);
    const step = steps.length ? steps.shift() : 201;
    if (step instanceof Error) return Promise.reject(step);
    if (typeof step === 'function') return step(call);
    const status = typeof step === 'number' ? step : step.status;
    const headers = (typeof step === 'object' && step.headers) || {};
    let body = (typeof step === 'object' && step.body) || null;
    if (body === null && status < 300) {
      body = url.includes('track-clicks')
        ? { count: call.json.clicks.length, skipped: 0 } : { status: 'recorded' };
    }
    if (body === null) body = { status_code: status, detail: 'no' };
    return Promise.resolve(new Response(JSON.stringify(body), { status, headers }));
  };
  return { fetch, calls };
}

/** Everything createTracker needs, faked; `beacons` records sendBeacon calls. */
export function fakeBrowser({ script = [], referrer = '', origin = 'https://site.example',
  framed = false, beaconResult = true, navigator = {}, windowDoNotTrack = undefined } = {}) {
  const clock = new Clock();
  const { fetch, calls } = scriptedFetch(script);
  const beacons = [];
  const window = new EventTarget();
  window.self = window;
  window.top = framed ? {} : window;
  if (windowDoNotTrack !== undefined) window.doNotTrack = windowDoNotTrack;
  const document = new EventTarget();
  document.referrer = referrer;
  document.visibilityState = 'visible';
  let n = 0;
  const env = {
    fetch,
    sendBeacon: (url, blob) => {
      beacons.push({ url, blob });
      return typeof beaconResult === 'function' ? beaconResult(url, blob) : beaconResult;
    },
    navigator,
    window,
    document,
    location: { origin, href: `${origin}/projects/1` },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    crypto: { randomUUID: () => `key-${++n}` },
    moduleOrigin: '',
  };
  const hide = () => {
    document.visibilityState = 'hidden';
    document.dispatchEvent(new Event('visibilitychange'));
  };
  const pagehide = () => window.dispatchEvent(new Event('pagehide'));
  return { env, clock, calls, beacons, window, document, hide, pagehide };
}

export async function beaconBody(beacon) {
  return JSON.parse(await beacon.blob.text());
}

// Browser client of the engagement service: project views and feed clicks, fire-and-forget.
// Dependency-free ES module, served by the service at /static/tracking.js (types: tracking.d.ts)
// and packed for npm, this very file, by the package.json beside it.
//
//   import { configure, trackProjectView, getViewSourceFromReferrer,
//            trackProjectClick, getClickSourceFromTab } from 'https://engagement.example/static/tracking.js';
//   configure({ getToken: () => session.accessToken });       // optional
//   configure({ respectDoNotTrack: true });                  // optional: GPC / DNT send nothing
//   trackProjectView(42);                                    // source from document.referrer
//   trackProjectClick(42, getClickSourceFromTab('trending'), 3);
//   observeImpressions(feedElement, { source: 'explore_trending' }); // cards actually seen
//
// Nothing here ever throws into the page or blocks it: every failure ends in a resolved
// promise and, if configured, a call to `onError`.

export const VIEW_SOURCES = Object.freeze(['explore', 'profile', 'direct', 'search', 'embed']);
export const CLICK_SOURCES = Object.freeze([
  'explore_for_you', 'explore_trending', 'explore_new', 'explore_news',
  'search', 'profile', 'related',
]);
/** The batch endpoints take at most this many clicks (or impressions) per request. */
export const MAX_BATCH_SIZE = 50;
/** An A/B variant name, as the service accepts it. */
export const VARIANT_PATTERN = /^[a-z0-9_-]{1,32}$/;

const MAX_ID = (1n << 63n) - 1n;
const MAX_POSITION = 2 ** 31 - 1;
// What a 2xx may say: stored, a repeat within the dedup window, or a known bot's call.
const SERVER_VIEW_RESULTS = ['recorded', 'deduplicated', 'ignored'];
const BEACON_TYPE = 'text/plain;charset=UTF-8'; // CORS-safelisted: a beacon needs no preflight

const TAB_SOURCES = Object.freeze({
  'for-you': 'explore_for_you', foryou: 'explore_for_you', 'for-you-feed': 'explore_for_you',
  trending: 'explore_trending', popular: 'explore_trending',
  new: 'explore_new', newest: 'explore_new', latest: 'explore_new', recent: 'explore_new',
  news: 'explore_news',
  search: 'search', profile: 'profile', related: 'related',
});

/** Referrer paths per view source; checked in this order, the first match wins. */
export const DEFAULT_VIEW_SOURCE_PATTERNS = Object.freeze({
  search: Object.freeze([/^\/search(?:[/?#]|$)/, /[?&](?:q|query|search)=/]),
  profile: Object.freeze([/^\/(?:u|user|users|profile|profiles)\/[^/?#]+/, /^\/@[^/?#]+/]),
  explore: Object.freeze([/^\/(?:[?#]|$)/, /^\/(?:explore|feed|discover)(?:[/?#]|$)/]),
});
const PATTERN_ORDER = ['search', 'profile', 'explore'];

const DEFAULTS = Object.freeze({
  baseUrl: undefined, // undefined: the origin this module was loaded from (else same origin)
  token: null,
  getToken: null,
  sessionKey: null,
  credentials: 'include',
  flushDelayMs: 1000,
  batchSize: MAX_BATCH_SIZE,
  maxQueueSize: 1000,
  maxRetries: 8,
  retryBaseMs: 500,
  retryMaxMs: 30000,
  viewSourcePatterns: DEFAULT_VIEW_SOURCE_PATTERNS,
  siteOrigins: null,
  respectDoNotTrack: false,
  onError: null,
});

function moduleOrigin() {
  try {
    const url = new URL(import.meta.url);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : '';
  } catch {
    return '';
  }
}

function browserEnvironment() {
  const g = globalThis;
  const nav = g.navigator;
  return {
    fetch: typeof g.fetch === 'function' ? g.fetch.bind(g) : null,
    sendBeacon: nav && typeof nav.sendBeacon === 'function' ? nav.sendBeacon.bind(nav) : null,
    navigator: nav ?? null,
    window: g.window ?? null,
    document: g.document ?? null,
    location: g.location ?? null,
    setTimeout: g.setTimeout.bind(g),
    clearTimeout: g.clearTimeout.bind(g),
    random: Math.random,
    crypto: g.crypto ?? null,
    IntersectionObserver: typeof g.IntersectionObserver === 'function' ? g.IntersectionObserver : null,
    MutationObserver: typeof g.MutationObserver === 'function' ? g.MutationObserver : null,
    moduleOrigin: moduleOrigin(),
  };
}

// The visitor asked not to be tracked: Global Privacy Control, or Do Not Track as current
// browsers ('1'), old Firefox ('yes'), old IE (msDoNotTrack) and old Safari (window) spell it.
function privacySignal(nav, win) {
  try {
    if (nav && nav.globalPrivacyControl === true) return true;
    const dnt = [nav?.doNotTrack, nav?.msDoNotTrack, win?.doNotTrack];
    return dnt.some((value) => value === '1' || value === 'yes');
  } catch {
    return false;
  }
}

/** The click source of a feed tab ('for-you', 'trending', 'new', 'news', 'search', ...). */
export function getClickSourceFromTab(tab) {
  try {
    const key = String(tab ?? '').trim().toLowerCase().replace(/[\s_]+/g, '-');
    if (CLICK_SOURCES.includes(key.replace(/-/g, '_'))) return key.replace(/-/g, '_');
    return TAB_SOURCES[key] ?? TAB_SOURCES[key.replace(/-/g, '')] ?? 'explore_for_you';
  } catch {
    return 'explore_for_you';
  }
}

function projectIdText(projectId) {
  let text;
  if (typeof projectId === 'number') {
    if (!Number.isSafeInteger(projectId) || projectId < 1) return null;
    text = String(projectId);
  } else if (typeof projectId === 'bigint' || typeof projectId === 'string') {
    text = String(projectId).trim();
    if (!/^[1-9][0-9]{0,18}$/.test(text)) return null;
  } else {
    return null;
  }
  return BigInt(text) <= MAX_ID ? text : null;
}

function validPosition(position) {
  if (position === undefined || position === null) return null;
  const n = typeof position === 'string' && /^[0-9]+$/.test(position.trim())
    ? Number(position) : position;
  return Number.isInteger(n) && n >= 0 && n <= MAX_POSITION ? n : undefined;
}

function validVariant(variant) {
  if (variant === undefined || variant === null) return null;
  return typeof variant === 'string' && VARIANT_PATTERN.test(variant) ? variant : undefined;
}

// One queued batch item: `{"project_id":1,"source":"search","position":3,"variant":"b"}`.
function feedItem(id, source, position, variant) {
  return `{"project_id":${id},"source":"${source}"`
    + (position === null ? '' : `,"position":${position}`)
    + (variant === null ? '' : `,"variant":"${variant}"`) + '}';
}

function matches(pattern, url) {
  if (pattern instanceof RegExp) {
    pattern.lastIndex = 0;
    return pattern.test(url.pathname + url.search);
  }
  if (typeof pattern === 'string') return url.pathname.startsWith(pattern);
  if (typeof pattern === 'function') return Boolean(pattern(url));
  return false;
}

/** A tracker with its own queue and settings; the module's functions use a default one. */
export function createTracker(options = {}, environment = undefined) {
  const env = { ...browserEnvironment(), ...(environment ?? {}) };
  let config = { ...DEFAULTS };
  const queue = []; // click items (JSON text) not yet sent
  const impressionQueue = []; // impression items (JSON text) not yet sent
  const waiting = new Set(); // requests between a failed attempt and their retry
  let flushTimer = null;
  let listening = false;
  let lastToken = null;

  function report(event) {
    try {
      if (typeof config.onError === 'function') config.onError(event);
    } catch {
      // a faulty onError must not break tracking either
    }
  }

  function configure(opts = {}) {
    try {
      const next = { ...config };
      for (const [key, value] of Object.entries(opts ?? {})) {
        if (!(key in DEFAULTS)) continue;
        next[key] = value;
      }
      if (opts && opts.viewSourcePatterns) {
        next.viewSourcePatterns = { ...DEFAULT_VIEW_SOURCE_PATTERNS, ...opts.viewSourcePatterns };
      }
      next.batchSize = clampInt(next.batchSize, 1, MAX_BATCH_SIZE, MAX_BATCH_SIZE);
      next.maxQueueSize = clampInt(next.maxQueueSize, 1, 100000, DEFAULTS.maxQueueSize);
      next.maxRetries = clampInt(next.maxRetries, 0, 100, DEFAULTS.maxRetries);
      next.flushDelayMs = clampInt(next.flushDelayMs, 0, 600000, DEFAULTS.flushDelayMs);
      next.retryBaseMs = clampInt(next.retryBaseMs, 1, 600000, DEFAULTS.retryBaseMs);
      next.retryMaxMs = clampInt(next.retryMaxMs, next.retryBaseMs, 3600000, DEFAULTS.retryMaxMs);
      next.respectDoNotTrack = Boolean(next.respectDoNotTrack);
      config = next;
    } catch (error) {
      report({ kind: 'config', reason: 'invalid', error });
    }
  }

  // Read at every call, not once: configure() may come after the first events.
  function optedOut() {
    return config.respectDoNotTrack && privacySignal(env.navigator, env.window);
  }

  function apiUrl(path) {
    const base = typeof config.baseUrl === 'string' ? config.baseUrl : env.moduleOrigin;
    return String(base || '').replace(/\/+$/, '') + path;
  }

  function isFramed() {
    const win = env.window;
    if (!win) return false;
    try {
      return win.top !== win.self;
    } catch {
      return true; // reading top can only fail across origins, i.e. inside a frame
    }
  }

  function siteOrigins() {
    if (Array.isArray(config.siteOrigins)) return config.siteOrigins;
    return env.location && env.location.origin ? [env.location.origin] : [];
  }

  function getViewSourceFromReferrer(referrer = undefined) {
    try {
      if (isFramed()) return 'embed';
      const ref = referrer === undefined ? env.document?.referrer : referrer;
      if (!ref) return 'direct';
      const base = env.location && env.location.href ? env.location.href : undefined;
      const url = new URL(String(ref), base);
      const origins = siteOrigins();
      if (origins.length && !origins.includes(url.origin)) return 'direct';
      const patterns = config.viewSourcePatterns || DEFAULT_VIEW_SOURCE_PATTERNS;
      const order = [...PATTERN_ORDER, ...Object.keys(patterns).filter((s) => !PATTERN_ORDER.includes(s))];
      for (const source of order) {
        if (!VIEW_SOURCES.includes(source)) continue;
        const list = patterns[source];
        if (Array.isArray(list) && list.some((p) => matches(p, url))) return source;
      }
    } catch {
      // an unparsable referrer tells us nothing
    }
    return 'direct';
  }

  function newKey() {
    try {
      if (env.crypto && typeof env.crypto.randomUUID === 'function') return env.crypto.randomUUID();
      if (env.crypto && typeof env.crypto.getRandomValues === 'function') {
        const bytes = env.crypto.getRandomValues(new Uint8Array(16));
        return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      }
    } catch {
      // fall through: insecure contexts may lack randomUUID
    }
    let key = '';
    for (let i = 0; i < 32; i += 1) key += Math.floor(env.random() * 16).toString(16);
    return key;
  }

  function tokenNow() {
    // Synchronous view of the token, for page unload where nothing can be awaited.
    if (config.token) return String(config.token);
    if (typeof config.getToken !== 'function') return null;
    try {
      const value = config.getToken();
      if (value && typeof value.then === 'function') {
        value.then((t) => { lastToken = t || null; }, () => {});
        return lastToken;
      }
      lastToken = value || null;
      return lastToken;
    } catch {
      return lastToken;
    }
  }

  async function resolveToken() {
    if (config.token) return String(config.token);
    if (typeof config.getToken !== 'function') return null;
    try {
      lastToken = (await config.getToken()) || null;
    } catch (error) {
      report({ kind: 'token', reason: 'getToken failed', error });
    }
    return lastToken;
  }

  function headersFor(request, token) {
    const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': request.key };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (config.sessionKey) headers['X-Session-Key'] = String(config.sessionKey);
    return headers;
  }

  function makeRequest(kind, path, body, extra = {}) {
    let resolve;
    const done = new Promise((r) => { resolve = r; });
    return { kind, url: apiUrl(path), body, key: newKey(), attempts: 0, settled: false,
      resolve, done, ...extra };
  }

  function settle(request, result) {
    if (request.settled) return;
    request.settled = true;
    request.resolve(result);
  }

  function backoffMs(attempts, retryAfter) {
    const exp = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.max(0, attempts - 1));
    let delay = exp / 2 + (exp / 2) * env.random(); // "equal jitter": spread, never near zero
    if (retryAfter !== null) delay = Math.max(delay, Math.min(config.retryMaxMs, retryAfter * 1000));
    return Math.round(delay);
  }

  function retryAfterSeconds(response) {
    try {
      const raw = response && response.headers && response.headers.get('retry-after');
      const n = raw === null || raw === undefined ? NaN : Number(raw);
      return Number.isFinite(n) && n >= 0 ? n : null;
    } catch {
      return null;
    }
  }

  async function outcomeOf(request, response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const status = body && typeof body.status === 'string' ? body.status : null;
    if (request.kind === 'view') {
      if (response.ok) return SERVER_VIEW_RESULTS.includes(status) ? status : 'recorded';
      return response.status === 404 ? 'not_found' : 'rejected';
    }
    if (response.ok) {
      const count = body && Number.isInteger(body.count) ? body.count : request.size;
      const skipped = body && Number.isInteger(body.skipped) ? body.skipped : 0;
      return { status: status === 'ignored' ? 'ignored' : 'sent', count, skipped };
    }
    return { status: 'rejected', count: 0, skipped: 0 };
  }

  function failedResult(request) {
    return request.kind === 'view' ? 'failed' : { status: 'failed', count: 0, skipped: 0 };
  }

  function optedOutResult(request) {
    return request.kind === 'view' ? 'opted_out' : { status: 'opted_out', count: 0, skipped: 0 };
  }

  function retryOrGiveUp(request, response, error) {
    const status = response ? response.status : null;
    if (request.attempts > config.maxRetries) {
      report({ kind: request.kind, reason: 'gave up', status, error, attempts: request.attempts });
      settle(request, failedResult(request));
      return;
    }
    const entry = { request, timer: null };
    entry.timer = env.setTimeout(() => {
      waiting.delete(entry);
      attempt(request);
    }, backoffMs(request.attempts, retryAfterSeconds(response)));
    waiting.add(entry);
  }

  async function attempt(request, unloading = false) {
    if (request.settled) return;
    // Also drops what was queued or waiting to be retried before the option was set.
    if (optedOut()) {
      settle(request, optedOutResult(request));
      return;
    }
    if (typeof env.fetch !== 'function') {
      settle(request, failedResult(request));
      return;
    }
    request.attempts += 1;
    let response;
    try {
      // At unload the fetch must start in this task: no awaiting a token there.
      const token = unloading ? tokenNow() : await resolveToken();
      const headers = headersFor(request, token);
      // keepalive: the request survives a navigation started while it is in flight, so an
      // in-flight batch never needs re-sending at page unload.
      response = await env.fetch(request.url, {
        method: 'POST', headers, body: request.body, credentials: config.credentials,
        keepalive: true,
      });
    } catch (error) {
      retryOrGiveUp(request, null, error);
      return;
    }
    try {
      if (response.status === 429 || response.status >= 500) {
        retryOrGiveUp(request, response, null);
        return;
      }
      const result = await outcomeOf(request, response);
      if (!response.ok) {
        report({ kind: request.kind, reason: 'rejected', status: response.status });
      }
      settle(request, result); // acknowledged (or refused): never sent again
    } catch (error) {
      report({ kind: request.kind, reason: 'unexpected', error });
      settle(request, failedResult(request));
    }
  }

  function sendAtUnload(request) {
    if (optedOut()) {
      settle(request, optedOutResult(request));
      return;
    }
    // A beacon carries no headers; use it only when none is needed: anonymous identity comes
    // from cookies, and a first attempt has no Idempotency-Key worth keeping.
    const needsHeaders = Boolean(tokenNow() || config.sessionKey || request.attempts > 0);
    if (!needsHeaders && typeof env.sendBeacon === 'function' && typeof Blob === 'function') {
      try {
        if (env.sendBeacon(request.url, new Blob([request.body], { type: BEACON_TYPE }))) {
          settle(request, request.kind === 'view' ? 'sent'
            : { status: 'sent', count: request.size, skipped: 0 });
          return;
        }
      } catch {
        // the browser refused the beacon: fall back to a keepalive fetch
      }
    }
    attempt(request, true);
  }

  function takeBatch() {
    const items = queue.splice(0, config.batchSize);
    return makeRequest('clicks', '/api/v1/projects/track-clicks/',
      `{"clicks":[${items.join(',')}]}`, { size: items.length });
  }

  function takeImpressionBatch() {
    const items = impressionQueue.splice(0, config.batchSize);
    return makeRequest('impressions', '/api/v1/projects/track-impressions/',
      `{"impressions":[${items.join(',')}]}`, { size: items.length });
  }

  function flush() {
    try {
      if (flushTimer !== null) {
        env.clearTimeout(flushTimer);
        flushTimer = null;
      }
      const pending = [];
      while (queue.length || impressionQueue.length) {
        const request = queue.length ? takeBatch() : takeImpressionBatch();
        pending.push(request.done);
        attempt(request);
      }
      return Promise.all(pending).then(() => undefined, () => undefined);
    } catch (error) {
      report({ kind: 'clicks', reason: 'unexpected', error });
      return Promise.resolve();
    }
  }

  function flushAtUnload() {
    try {
      if (flushTimer !== null) {
        env.clearTimeout(flushTimer);
        flushTimer = null;
      }
      const requests = [];
      for (const entry of waiting) {
        env.clearTimeout(entry.timer);
        requests.push(entry.request);
      }
      waiting.clear();
      while (queue.length) requests.push(takeBatch());
      while (impressionQueue.length) requests.push(takeImpressionBatch());
      for (const request of requests) sendAtUnload(request);
    } catch (error) {
      report({ kind: 'clicks', reason: 'unexpected', error });
    }
  }

  function onVisibilityChange() {
    if (env.document && env.document.visibilityState === 'hidden') flushAtUnload();
  }

  function listen() {
    if (listening) return;
    listening = true;
    try {
      if (env.window && typeof env.window.addEventListener === 'function') {
        env.window.addEventListener('pagehide', flushAtUnload);
      }
      if (env.document && typeof env.document.addEventListener === 'function') {
        env.document.addEventListener('visibilitychange', onVisibilityChange);
      }
    } catch {
      // no page lifecycle events: clicks still go out after the flush delay
    }
  }

  function trackProjectView(projectId, source = undefined) {
    try {
      listen();
      const id = projectIdText(projectId);
      const chosen = source === undefined || source === null ? getViewSourceFromReferrer() : source;
      if (id === null || !VIEW_SOURCES.includes(chosen)) {
        report({ kind: 'view', reason: id === null ? 'invalid project id' : 'invalid source' });
        return Promise.resolve('invalid');
      }
      if (optedOut()) return Promise.resolve('opted_out');
      const request = makeRequest('view', `/api/v1/projects/${id}/track-view/`,
        JSON.stringify({ source: chosen }));
      attempt(request);
      return request.done;
    } catch (error) {
      report({ kind: 'view', reason: 'unexpected', error });
      return Promise.resolve('failed');
    }
  }

  // Clicks and impressions go through the same checks and the same batching, each kind
  // into its own queue (they are sent to different endpoints).
  function enqueueFeedItem(kind, target, projectId, source, position, variant) {
    try {
      listen();
      const id = projectIdText(projectId);
      const pos = validPosition(position);
      const ab = validVariant(variant);
      // One invalid item makes the server refuse the whole batch, so refuse it here instead.
      if (id === null || !CLICK_SOURCES.includes(source) || pos === undefined
          || ab === undefined) {
        const reason = id === null ? 'invalid project id' : pos === undefined
          ? 'invalid position' : ab === undefined ? 'invalid variant' : 'invalid source';
        report({ kind, reason });
        return false;
      }
      if (optedOut()) return false;
      if (target.length >= config.maxQueueSize) {
        report({ kind, reason: 'queue full' });
        return false;
      }
      target.push(feedItem(id, source, pos, ab));
      if (target.length >= config.batchSize) {
        flush();
      } else if (flushTimer === null) {
        flushTimer = env.setTimeout(() => {
          flushTimer = null;
          flush();
        }, config.flushDelayMs);
      }
      return true;
    } catch (error) {
      report({ kind, reason: 'unexpected', error });
      return false;
    }
  }

  function trackProjectClick(projectId, source, position = undefined, variant = undefined) {
    return enqueueFeedItem('click', queue, projectId, source, position, variant);
  }

  function trackImpression(projectId, source, position = undefined, variant = undefined) {
    return enqueueFeedItem('impression', impressionQueue, projectId, source, position, variant);
  }

  // Cards of `container` (matching `selector`) count as seen once at least `threshold` of
  // them has been in view for `minVisibleMs` without interruption while the page is
  // visible (the usual viewability rule: half the card for a second). Each card counts once
  // per observer; cards added later (infinite scroll) are picked up too.
  function observeImpressions(container, options = {}) {
    const handle = { observe() {}, disconnect() {} };
    try {
      const opts = options ?? {};
      const source = opts.source;
      const Observer = env.IntersectionObserver;
      if (!CLICK_SOURCES.includes(source) || !container || typeof Observer !== 'function') {
        const reason = !CLICK_SOURCES.includes(source) ? 'invalid source'
          : !container ? 'no container' : 'no IntersectionObserver';
        report({ kind: 'impression', reason });
        return handle;
      }
      if (optedOut()) return handle; // nothing will be sent: no observer, no timers either
      listen();
      const selector = typeof opts.selector === 'string' ? opts.selector : '[data-project-id]';
      const threshold = Math.min(1, Math.max(0, Number(opts.threshold ?? 0.5) || 0));
      const dwellMs = clampInt(opts.minVisibleMs, 0, 60000, 1000);
      const cards = () => Array.from(container.querySelectorAll(selector));
      const getProjectId = typeof opts.getProjectId === 'function' ? opts.getProjectId
        : (el) => el.getAttribute('data-project-id');
      const getPosition = typeof opts.getPosition === 'function' ? opts.getPosition
        : (el) => el.getAttribute('data-position') ?? cards().indexOf(el);
      const getVariant = typeof opts.getVariant === 'function' ? opts.getVariant
        : () => opts.variant;
      const seen = new WeakSet();
      const timers = new Map(); // card -> dwell timer while it is in view

      function stopTimer(el) {
        if (timers.has(el)) env.clearTimeout(timers.get(el));
        timers.delete(el);
      }

      function record(el) {
        timers.delete(el);
        if (seen.has(el)) return;
        // Counted only while someone can see it; a hidden tab's cards count when next in view.
        if (env.document && env.document.visibilityState === 'hidden') return;
        seen.add(el);
        observer.unobserve(el);
        try {
          trackImpression(getProjectId(el), source, getPosition(el), getVariant(el));
        } catch (error) {
          report({ kind: 'impression', reason: 'unexpected', error });
        }
      }

      const observer = new Observer((entries) => {
        for (const entry of entries) {
          const el = entry.target;
          if (seen.has(el)) continue;
          if (entry.isIntersecting && entry.intersectionRatio >= threshold) {
            if (dwellMs === 0) record(el);
            else if (!timers.has(el)) timers.set(el, env.setTimeout(() => record(el), dwellMs));
          } else {
            stopTimer(el);
          }
        }
      }, { root: opts.root ?? null, threshold: [threshold] });

      const watch = (el) => {
        if (el && !seen.has(el)) observer.observe(el);
      };
      cards().forEach(watch);
      let mutations = null;
      if (typeof env.MutationObserver === 'function') {
        mutations = new env.MutationObserver((records) => {
          for (const rec of records) {
            for (const node of rec.addedNodes) {
              if (node.nodeType !== 1) continue;
              if (node.matches(selector)) watch(node);
              node.querySelectorAll(selector).forEach(watch);
            }
          }
        });
        mutations.observe(container, { childList: true, subtree: true });
      }
      handle.observe = watch;
      handle.disconnect = () => {
        observer.disconnect();
        if (mutations) mutations.disconnect();
        for (const el of [...timers.keys()]) stopTimer(el);
      };
    } catch (error) {
      report({ kind: 'impression', reason: 'unexpected', error });
    }
    return handle;
  }

  function pending() {
    return { queued: queue.length + impressionQueue.length, retrying: waiting.size };
  }

  configure(options);
  return {
    configure, trackProjectView, trackProjectClick, trackImpression, observeImpressions,
    getViewSourceFromReferrer, getClickSourceFromTab, flush, flushAtUnload, pending,
  };
}

function clampInt(value, min, max, fallback) {
  const n = Number(value);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, Math.round(n)));
}

const tracker = createTracker();

/** Change settings of the module's tracker (TrackingOptions in tracking.d.ts). */
export function configure(options) {
  tracker.configure(options);
}

/** Record a project page view now; source defaults to one derived from document.referrer. */
export function trackProjectView(projectId, source) {
  return tracker.trackProjectView(projectId, source);
}

/** The view source of a page reached from `referrer` (default document.referrer). */
export function getViewSourceFromReferrer(referrer) {
  return tracker.getViewSourceFromReferrer(referrer);
}

/** Queue a click on a project card; sent in batches, and at page unload at the latest. */
export function trackProjectClick(projectId, source, position, variant) {
  return tracker.trackProjectClick(projectId, source, position, variant);
}

/** Queue one impression (a card seen in a feed); batched like clicks. */
export function trackImpression(projectId, source, position, variant) {
  return tracker.trackImpression(projectId, source, position, variant);
}

/** Report the cards of a feed container that are actually seen; returns { observe, disconnect }. */
export function observeImpressions(container, options) {
  return tracker.observeImpressions(container, options);
}

/** Send the queued clicks now; resolves when they are acknowledged or given up. */
export function flush() {
  return tracker.flush();
}

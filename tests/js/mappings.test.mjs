// Referrer -> view source and feed tab -> click source, and the module's shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fakeBrowser, MODULE_SOURCE, tracking } from './harness.mjs';

const { createTracker, getClickSourceFromTab } = tracking;

function viewSource(referrer, { options = {}, ...browser } = {}) {
  const { env } = fakeBrowser(browser);
  return createTracker(options, env).getViewSourceFromReferrer(referrer);
}

test('module has no runtime dependencies and exports the original API', () => {
  assert.doesNotMatch(MODULE_SOURCE, /^\s*import\s/m);
  assert.doesNotMatch(MODULE_SOURCE, /\brequire\(/);
  for (const name of ['trackProjectView', 'getViewSourceFromReferrer', 'trackProjectClick',
    'getClickSourceFromTab', 'configure', 'flush', 'createTracker']) {
    assert.equal(typeof tracking[name], 'function', name);
  }
});

test('feed tabs map onto the click sources', () => {
  const expected = {
    'for-you': 'explore_for_you', trending: 'explore_trending', new: 'explore_new',
    news: 'explore_news', search: 'search', profile: 'profile', related: 'related',
    'For You': 'explore_for_you', forYou: 'explore_for_you', for_you: 'explore_for_you',
    TRENDING: 'explore_trending', latest: 'explore_new', explore_news: 'explore_news',
  };
  for (const [tab, source] of Object.entries(expected)) {
    assert.equal(getClickSourceFromTab(tab), source, tab);
  }
});

test('an unknown tab falls back to the default feed instead of an invalid source', () => {
  for (const tab of ['', undefined, null, 'bogus', 42, {}]) {
    assert.equal(getClickSourceFromTab(tab), 'explore_for_you');
  }
});

test('no referrer is a direct view', () => {
  assert.equal(viewSource(''), 'direct');
  assert.equal(viewSource(undefined, { referrer: '' }), 'direct');
});

test('site referrers map onto explore, profile and search', () => {
  const o = 'https://site.example';
  const cases = {
    [`${o}/`]: 'explore',
    [`${o}/?tab=trending`]: 'explore',
    [`${o}/explore`]: 'explore',
    [`${o}/explore/trending?page=2`]: 'explore',
    [`${o}/users/alice`]: 'profile',
    [`${o}/u/alice/projects`]: 'profile',
    [`${o}/@alice`]: 'profile',
    [`${o}/search?q=robots`]: 'search',
    [`${o}/search/`]: 'search',
    [`${o}/explore?q=robots`]: 'search',
    [`${o}/projects/7`]: 'direct',
    [`${o}/explorer`]: 'direct',
  };
  for (const [referrer, source] of Object.entries(cases)) {
    assert.equal(viewSource(referrer), source, referrer);
  }
});

test('document.referrer is the default referrer', () => {
  assert.equal(viewSource(undefined, { referrer: 'https://site.example/users/bob' }), 'profile');
});

test('referrers from other sites are direct views', () => {
  assert.equal(viewSource('https://www.google.com/search?q=x'), 'direct');
  assert.equal(viewSource('https://other.example/explore'), 'direct');
});

test('extra site origins count as the site', () => {
  const options = { siteOrigins: ['https://site.example', 'https://m.site.example'] };
  assert.equal(viewSource('https://m.site.example/explore', { options }), 'explore');
});

test('a framed page is an embed whatever the referrer', () => {
  assert.equal(viewSource('https://site.example/explore', { framed: true }), 'embed');
  assert.equal(viewSource('', { framed: true }), 'embed');
});

test('path patterns are configurable per source', () => {
  const options = {
    viewSourcePatterns: {
      explore: [/^\/demo\/?(?:[?#]|$)/],
      profile: ['/people/'],
      search: [(url) => url.searchParams.has('find')],
    },
  };
  const o = 'https://site.example';
  assert.equal(viewSource(`${o}/demo/?tab=new`, { options }), 'explore');
  assert.equal(viewSource(`${o}/explore`, { options }), 'direct');
  assert.equal(viewSource(`${o}/people/ann`, { options }), 'profile');
  assert.equal(viewSource(`${o}/demo/?find=x`, { options }), 'search');
  // sources not given keep their defaults
  const partial = { viewSourcePatterns: { explore: ['/home'] } };
  assert.equal(viewSource(`${o}/users/x`, { options: partial }), 'profile');
});

test('a malformed referrer or a throwing pattern is direct, never an exception', () => {
  assert.equal(viewSource('http://[bad'), 'direct');
  const options = { viewSourcePatterns: { explore: [() => { throw new Error('x'); }] } };
  assert.equal(viewSource('https://site.example/', { options }), 'direct');
});

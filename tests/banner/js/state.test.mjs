// The banner's consent rules (static/banner/state.js), in Node without a DOM: when to ask, what is in effect,
// how long a choice lasts, and what Global Privacy Control refuses.

import assert from 'node:assert/strict';
import {beforeEach, describe, test} from 'node:test';

import {cookieJar, load} from './load.mjs';

const DAY = 864e5;
const MAX_AGE = 395 * 86400;  // seconds: CNIL 2020-092, at most 13 months

const purpose = (key, fields) => ({key, refusable: true, gpc: false, consent_mode: [],
  defaults: {opt_in: 'denied', opt_out: 'granted', notice_only: 'granted'}, ...fields});

function site(mode = 'opt_in', notice = {version: 3, last_material_version: 2}) {
  return {
    mode, notice, locale: 'en', lifetimes: {consent_days: 365, refusal_days: 182},
    purposes: [
      purpose('necessary', {refusable: false, defaults: {opt_in: 'granted', opt_out: 'granted', notice_only: 'granted'}}),
      purpose('analytics', {consent_mode: ['analytics_storage']}),
      purpose('preferences', {consent_mode: ['functionality_storage']}),
      purpose('sale', {gpc: true, consent_mode: ['ad_storage']}),
    ],
  };
}

const stored = (d, fields) => ({v: 'visitor.signed', d, n: 3, t: Date.now() - DAY, x: Date.now() + DAY, ...fields});

let document;
let rules;

beforeEach(() => {
  document = cookieJar();
  rules = load(['constants.js', 'state.js'], {document, location: {protocol: 'https:'}});
});

/** What the consent cookie holds now, as the banner would read it on the next visit. */
function cookie() {
  const m = document.cookie.match(/(?:^|; )cmp_consent=([^;]*)/);
  return m && JSON.parse(decodeURIComponent(m[1]));
}

function setCookie(s) {
  document.cookie = 'cmp_consent=' + encodeURIComponent(JSON.stringify(s)) + ';path=/';
}

/** A store opened on `config` over the cookie `s` (or none): the store and what open() said. */
function opened(config, s, gpc = false) {
  if (s) setCookie(s);
  const store = rules.createStore(gpc);
  return {store, start: store.open(config, Date.now())};
}

/** The service's answer to a recorded decision. */
function answer(decisions, expires, fields) {
  return {visitor_id: 'visitor.signed', decisions, notice_version: 3, received_at: new Date().toISOString(),
    expires_at: new Date(expires).toISOString(), event_id: 'event-1', receipt_url: 'https://cmp.example/r/1', ...fields};
}

test('state.js loads without a DOM: it touches the cookie only when a store method is called', () => {
  const provided = load(['constants.js', 'state.js']);
  assert.deepEqual(Object.keys(provided).filter(k => typeof provided[k] == 'function').sort(),
    ['createStore', 'effective', 'gpcRefuses', 'grantsAny', 'needsAsking']);
  const store = provided.createStore(false);
  assert.deepEqual(store.state, {necessary: true});
  assert.equal(store.config, null);
  assert.equal(store.receipt, null);
  assert.throws(() => store.open(site(), Date.now()), ReferenceError);
});

describe('needsAsking', () => {
  const now = Date.now();

  test('asks when nothing is stored', () => {
    assert.equal(rules.needsAsking(null, site(), now), true);
  });

  test('asks once the stored choice has run out, and not before', () => {
    assert.equal(rules.needsAsking(stored({}, {x: now - 1}), site(), now), true);
    assert.equal(rules.needsAsking(stored({}, {x: now}), site(), now), true);
    assert.equal(rules.needsAsking(stored({}, {x: now + 1}), site(), now), false);
  });

  test('asks again after a material notice change, not after a minor one', () => {
    // Version 4 changed the notice materially; version 5 is a minor change over it.
    const config = site('opt_in', {version: 5, last_material_version: 4});
    assert.equal(rules.needsAsking(stored({}, {n: 3}), config, now), true);
    assert.equal(rules.needsAsking(stored({}, {n: 4}), config, now), false);
    assert.equal(rules.needsAsking(stored({}, {n: 5}), config, now), false);
  });

  test('a site that never published a material version asks only for a missing or expired choice', () => {
    const config = site('opt_in', {version: 2, last_material_version: null});
    assert.equal(rules.needsAsking(stored({}, {n: 1}), config, now), false);
  });
});

describe('effective', () => {
  test('with no choice, the mode decides: opt_in grants only what is necessary', () => {
    assert.deepEqual(rules.effective(site('opt_in'), null, false),
      {necessary: true, analytics: false, preferences: false, sale: false});
    assert.deepEqual(rules.effective(site('opt_out'), null, false),
      {necessary: true, analytics: true, preferences: true, sale: true});
  });

  test('stored choices override the defaults; a purpose not chosen keeps its default', () => {
    const s = stored({analytics: true, sale: false});
    assert.deepEqual(rules.effective(site('opt_in'), s, false),
      {necessary: true, analytics: true, preferences: false, sale: false});
    assert.deepEqual(rules.effective(site('opt_out'), s, false),
      {necessary: true, analytics: true, preferences: true, sale: false});
  });

  test('what is strictly necessary is always in effect, even stored as refused', () => {
    assert.equal(rules.effective(site('opt_in'), stored({necessary: false}), false).necessary, true);
  });
});

describe('GPC', () => {
  test('in opt_out mode it refuses sale/sharing, even over an earlier grant, and nothing else', () => {
    const config = site('opt_out');
    const sale = config.purposes.find(p => p.key == 'sale');
    const analytics = config.purposes.find(p => p.key == 'analytics');
    assert.equal(rules.gpcRefuses(config, sale, true), true);
    assert.equal(rules.gpcRefuses(config, analytics, true), false);
    assert.equal(rules.gpcRefuses(config, sale, false), false);
    assert.deepEqual(rules.effective(config, stored({sale: true, analytics: true}), true),
      {necessary: true, analytics: true, preferences: true, sale: false});
  });

  test('in opt_in mode it leaves a grant as it is', () => {
    const config = site('opt_in');
    assert.equal(rules.gpcRefuses(config, config.purposes.find(p => p.key == 'sale'), true), false);
    assert.equal(rules.effective(config, stored({sale: true}), true).sale, true);
  });

  test('an earlier sale grant is stopped at start-up and its refusal recorded unasked', () => {
    const {store, start} = opened(site('opt_out'), stored({sale: true, analytics: true}), true);
    assert.deepEqual(start, {ask: false, refused: ['sale'], recordGpc: true});
    assert.equal(store.state.sale, false);
  });

  test('a first visit in opt_out mode records the refusal instead of asking; in opt_in mode it asks', () => {
    assert.deepEqual(opened(site('opt_out'), null, true).start, {ask: true, refused: [], recordGpc: true});
    assert.deepEqual(opened(site('opt_in'), null, true).start, {ask: true, refused: [], recordGpc: false});
  });

  test('a refusal GPC could not record takes effect without a cookie (it is tried again on the next visit)', () => {
    const {store} = opened(site('opt_out'), null, true);
    assert.equal(store.unrecorded(store.request('gpc', undefined, 'https://shop.example/')), true);
    assert.deepEqual(document.written, []);
    store.settle();
    assert.equal(store.state.sale, false);
  });
});

describe('the store', () => {
  test('a valid cookie is in effect at start-up and not asked again', () => {
    const {store, start} = opened(site(), stored({analytics: true}));
    assert.deepEqual(start, {ask: false, refused: [], recordGpc: false});
    assert.deepEqual(store.state, {necessary: true, analytics: true, preferences: false, sale: false});
  });

  test('a choice made before a material change is asked again, under the same signed visitor id', () => {
    const {store, start} = opened(site('opt_in', {version: 4, last_material_version: 4}), stored({analytics: true}));
    assert.equal(start.ask, true);
    assert.equal(store.state.analytics, false);
    const body = store.request('accept_all', undefined, 'https://shop.example/');
    assert.equal(body.visitor_id, 'visitor.signed');
    assert.equal(body.notice_version, 4);
  });

  test('Reject all over an earlier grant is recorded as a withdrawal; without one it stays Reject all', () => {
    assert.equal(opened(site(), stored({analytics: true})).store.request('reject_all').action, 'withdraw');
    assert.equal(opened(site(), stored({analytics: false})).store.request('reject_all').action, 'reject_all');
  });

  test('settling returns the purposes a decision revokes', () => {
    const {store} = opened(site(), stored({analytics: true, preferences: true}));
    store.remember(answer({analytics: 'denied'}, Date.now() + DAY));
    assert.deepEqual(store.settle(), ['analytics']);
    assert.deepEqual(store.state, {necessary: true, analytics: false, preferences: true, sale: false});
  });

  test('the receipt is a link only when it is a web address', () => {
    const {store} = opened(site());
    store.remember(answer({analytics: 'granted'}, Date.now() + DAY));
    assert.equal(store.receipt, 'https://cmp.example/r/1');
    store.remember(answer({analytics: 'granted'}, Date.now() + DAY, {receipt_url: 'javascript:alert(1)'}));
    assert.equal(store.receipt, null);
  });
});

describe('expiry', () => {
  test('a decision lasts as long as the service says', () => {
    const {store} = opened(site());
    const until = Date.now() + 30 * DAY;
    store.remember(answer({analytics: 'granted', preferences: 'denied'}, until));
    assert.equal(cookie().x, until);
    assert.deepEqual(cookie().d, {analytics: true, preferences: false});
  });

  test('a later decision on one purpose does not stretch the choices it leaves alone', () => {
    const first = Date.now() + 10 * DAY;
    const {store} = opened(site(), stored({analytics: true, preferences: false}, {x: first}));
    store.remember(answer({preferences: 'granted'}, Date.now() + 365 * DAY));
    assert.equal(cookie().x, first);
    assert.deepEqual(cookie().d, {analytics: true, preferences: true});
  });

  test('a decision on every stored purpose sets a new end, later or earlier', () => {
    const {store} = opened(site(), stored({analytics: true}, {x: Date.now() + 10 * DAY}));
    const later = Date.now() + 365 * DAY;
    store.remember(answer({analytics: 'granted', preferences: 'denied'}, later));
    assert.equal(cookie().x, later);
  });

  test('the cookie never lives longer than 13 months, whatever the service answers', () => {
    const {store} = opened(site());
    store.remember(answer({analytics: 'granted'}, Date.now() + 5000 * DAY));
    assert.match(document.written.at(-1), new RegExp(';max-age=' + MAX_AGE + ';samesite=lax;secure$'));
  });

  test('a refusal the service could not record is kept for the refusal lifetime; a grant is not kept', () => {
    const {store} = opened(site());
    assert.equal(store.unrecorded(store.request('save', {analytics: 'granted'}, 'https://shop.example/')), false);
    assert.equal(cookie(), null);
    const before = Date.now();
    assert.equal(store.unrecorded(store.request('reject_all', undefined, 'https://shop.example/')), true);
    const kept = cookie();
    assert.deepEqual(kept.d, {analytics: false, preferences: false, sale: false});
    assert.equal(kept.n, 3);
    assert.ok(kept.x - kept.t == 182 * DAY && kept.t >= before);
  });

  test('an unreadable or incomplete cookie counts as no choice', () => {
    document.cookie = 'cmp_consent=%7Bnot-json;path=/';
    assert.equal(opened(site()).start.ask, true);
    setCookie({v: 'x', d: {analytics: true}});  // no notice version
    assert.equal(opened(site()).start.ask, true);
  });
});

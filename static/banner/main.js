/* Start-up and the public API: window.cmp. */

const script = document.currentScript;
const site = script && script.getAttribute('data-site');
const base = script && new URL(script.src).origin;
const gpc = navigator.globalPrivacyControl === true;
const listeners = [];
let config = null;
let stored = null;
let state = {necessary: true};
let ui = null;
let markReady;

consentDefault();

function apply(next) {
  const revoked = Object.keys(state).filter(k => state[k] && !next[k]);
  state = next;
  if (revoked.length) {
    clearTrackers(config, revoked);
    // A script that already ran cannot be stopped: start the page again without it.
    if (ran(revoked)) return location.reload();
  }
  unblock(state, ui.placeholder);
  for (const fn of listeners) fn(Object.assign({}, state));
}

function remember(r) {
  const d = Object.assign({}, stored && stored.d);
  for (const k in r.decisions) d[k] = r.decisions[k] == 'granted';
  // A choice this decision left alone keeps its own end: the cookie lasts until the first of them runs out.
  const kept = stored && Object.keys(stored.d).some(k => !(k in r.decisions));
  const x = Date.parse(r.expires_at);
  stored = {v: r.visitor_id, d, n: r.notice_version, t: Date.parse(r.received_at), x: kept ? Math.min(x, stored.x) : x,
    r: r.event_id, u: r.receipt_url};
  writeState(stored);
}

/** Record a decision. Refusals take effect even when the service is unreachable; grants only once recorded. */
function decide(action, decisions) {
  if (action == 'reject_all' && stored && grantsAny(config, stored.d)) action = 'withdraw';
  const body = {action, decisions: decisions || {}, notice_version: config.notice.version, locale: config.locale,
    page_url: location.origin + location.pathname, gpc};
  if (stored && stored.v) body.visitor_id = stored.v;
  return record(base, site, body).then(r => {
    remember(r);
    conclude();
  }, () => {
    // GPC refuses without a record (effective() applies it); the record is tried again on the next visit.
    if (action == 'gpc') return conclude();
    if (action == 'accept_all' || Object.values(body.decisions).includes('granted')) return ui.error(config.texts.error);
    const d = Object.assign({}, stored && stored.d);
    for (const p of config.purposes) if (p.refusable && (action != 'save' || p.key in body.decisions)) d[p.key] = false;
    const now = Date.now();
    stored = {v: stored && stored.v, d, n: config.notice.version, t: now, x: now + config.lifetimes.refusal_days * 864e5};
    writeState(stored);
    conclude();
  });
}

/** The latest decision's receipt, if one was recorded; only a web address ever becomes a link. */
function receipt() {
  return stored && /^https?:\/\//.test(stored.u) ? stored.u : null;
}

function conclude() {
  const next = effective(config, stored, gpc);
  consentUpdate(config, next);
  ui.done();
  apply(next);
}

const api = {
  ready: new Promise(resolve => { markReady = resolve; }),
  get: purpose => !!state[purpose],
  onChange(fn) {
    listeners.push(fn);
    return () => listeners.splice(listeners.indexOf(fn) >>> 0, 1);
  },
  show: () => ui && ui.openPreferences(),
  withdraw: () => config ? decide('withdraw') : Promise.resolve(),
};
window.cmp = Object.freeze(api);

function start(c) {
  config = c;
  ui = createUI(config, {decide, current: () => state, receipt}, script.nonce);
  const s = readState();
  const ask = needsAsking(s, config, Date.now());
  stored = ask ? null : s;
  if (ask && s && s.v) stored = {v: s.v, d: {}, n: 0, t: 0, x: 0};
  const next = effective(config, ask ? null : stored, gpc);
  // Sale/sharing granted earlier but refused by GPC now: stopped before anything runs, and recorded.
  const refused = ask ? [] : config.purposes.filter(p => stored.d[p.key] && gpcRefuses(config, p, gpc)).map(p => p.key);
  if (grantsAny(config, next)) consentUpdate(config, next);
  state = next;
  if (refused.length) clearTrackers(config, refused);
  unblock(state, ui.placeholder);
  watch(() => state, ui.placeholder);
  if (refused.length || ask && gpc && config.mode == 'opt_out') decide('gpc');
  else if (ask) ui.showBanner();
}

if (site && base) {
  const locale = document.documentElement.lang || navigator.language || 'en';
  const go = () => fetchConfig(base, site, locale).then(start)
    // Fails closed: without the service only what is strictly necessary is in effect.
    .catch(() => {}).finally(() => markReady(api));
  document.readyState == 'loading' ? document.addEventListener('DOMContentLoaded', go) : go();
} else {
  markReady(api);
}

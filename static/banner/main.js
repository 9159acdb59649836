/* Start-up and the public API: window.cmp. Wires the store to the service, the page and the UI. */
// uses: createStore, grantsAny, fetchConfig, record, consentDefault, consentUpdate, unblock, ran, clearTrackers, watch
// uses: createUI

const script = document.currentScript;
const site = script && script.getAttribute('data-site');
const base = script && new URL(script.src).origin;
const gpc = navigator.globalPrivacyControl === true;
const store = createStore(gpc);
const listeners = [];
let ui = null;
let markReady;

consentDefault();

/** Record a decision. Refusals take effect even when the service is unreachable; grants only once recorded. */
function decide(action, decisions) {
  const body = store.request(action, decisions, location.origin + location.pathname);
  return record(base, site, body).then(r => {
    store.remember(r);
    conclude();
  }, () => store.unrecorded(body) ? conclude() : ui.error());
}

/** Put the decisions now stored into force: Consent Mode, the UI, the page's marked elements, the listeners. */
function conclude() {
  const revoked = store.settle();
  const state = store.state;
  consentUpdate(store.config, state);
  ui.done();
  if (revoked.length) {
    clearTrackers(store.config, revoked);
    // A script that already ran cannot be stopped: start the page again without it.
    if (ran(revoked)) return location.reload();
  }
  unblock(state, ui.placeholder);
  for (const fn of listeners) fn(Object.assign({}, state));
}

const api = {
  ready: new Promise(resolve => { markReady = resolve; }),
  get: purpose => !!store.state[purpose],
  onChange(fn) {
    listeners.push(fn);
    return () => listeners.splice(listeners.indexOf(fn) >>> 0, 1);
  },
  show: () => ui && ui.openPreferences(),
  withdraw: () => store.config ? decide('withdraw') : Promise.resolve(),
};
window.cmp = Object.freeze(api);

function start(config) {
  ui = createUI(config, {decide, current: () => store.state, receipt: () => store.receipt}, script.nonce);
  const {ask, refused, recordGpc} = store.open(config, Date.now());
  const state = store.state;
  if (grantsAny(config, state)) consentUpdate(config, state);
  // Sale/sharing granted earlier but refused by GPC now: stopped before anything runs, and recorded.
  if (refused.length) clearTrackers(config, refused);
  unblock(state, ui.placeholder);
  watch(() => store.state, ui.placeholder);
  if (recordGpc) decide('gpc');
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

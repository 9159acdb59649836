/* State apart from the DOM: the first-party consent cookie and the rules that read it. */

/**
 * @typedef {Object} Stored  What the consent cookie keeps.
 * @property {string} v  visitor id, as signed by the service
 * @property {Object<string, boolean>} d  decision per purpose
 * @property {number} n  notice version the decisions were given under
 * @property {number} t  decided at (ms)
 * @property {number} x  expires at (ms)
 * @property {string} [r]  event id of the last recorded decision (the receipt)
 * @property {string} [u]  address of that decision's consent receipt, with its signed token
 */

/** @returns {Stored|null} */
function readState() {
  const m = document.cookie.match(new RegExp('(?:^|; )' + COOKIE + '=([^;]*)'));
  try {
    const s = m && JSON.parse(decodeURIComponent(m[1]));
    return s && s.d && s.n ? s : null;
  } catch (e) {
    return null;
  }
}

/** @param {Stored} s */
function writeState(s) {
  const age = Math.max(0, Math.min(MAX_AGE, Math.round((s.x - Date.now()) / 1000)));
  document.cookie = COOKIE + '=' + encodeURIComponent(JSON.stringify(s)) + ';path=/;max-age=' + age +
    ';samesite=lax' + (location.protocol == 'https:' ? ';secure' : '');
}

/** Ask when nothing valid is stored: none, expired, or given before a material notice change. */
function needsAsking(s, config, now) {
  return !s || s.x <= now || s.n < (config.notice.last_material_version || 0);
}

/**
 * Whether Global Privacy Control refuses this purpose: sale/sharing in opt_out mode, even over an earlier grant
 * (CCPA regulations §7025(c)(3)). Opt-in regions need a grant for anything anyway.
 */
function gpcRefuses(config, p, gpc) {
  return gpc && p.gpc && config.mode == 'opt_out';
}

/** Decisions in effect: necessary always; then GPC's refusals, stored choices, the mode's defaults. */
function effective(config, s, gpc) {
  const out = {};
  for (const p of config.purposes) {
    out[p.key] = !p.refusable || !gpcRefuses(config, p, gpc) &&
      (s && p.key in s.d ? s.d[p.key] : p.defaults[config.mode] == 'granted');
  }
  return out;
}

function grantsAny(config, decisions) {
  return config.purposes.some(p => p.refusable && decisions[p.key]);
}

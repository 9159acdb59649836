/* State apart from the DOM: the first-party consent cookie, the rules that read it, and the store of what is in
   effect. The cookie is touched only when a store method is called. */
// uses: COOKIE, MAX_AGE
// provides: createStore, needsAsking, gpcRefuses, effective, grantsAny

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

/**
 * The banner's state: the site's configuration, what the cookie keeps, and the decisions in effect (only what is
 * strictly necessary until the configuration arrives).
 * @param {boolean} gpc  whether the browser sends Global Privacy Control
 */
function createStore(gpc) {
  let config = null;
  /** @type {Stored|null} */
  let stored = null;
  let state = {necessary: true};

  function save(s) {
    stored = s;
    writeState(s);
  }

  return {
    get config() {
      return config;
    },
    get state() {
      return state;
    },
    /** The latest decision's receipt, if one was recorded; only a web address ever becomes a link. */
    get receipt() {
      return stored && /^https?:\/\//.test(stored.u) ? stored.u : null;
    },

    /**
     * Start from the site's configuration and the cookie. Returns whether to ask, the purposes granted earlier
     * that GPC refuses now (to be stopped before anything runs), and whether to record GPC's refusal unasked.
     */
    open(c, now) {
      config = c;
      const s = readState();
      const ask = needsAsking(s, c, now);
      // Asked again, a visitor keeps the id the service signed, so their decisions stay one history.
      stored = !ask ? s : s && s.v ? {v: s.v, d: {}, n: 0, t: 0, x: 0} : null;
      state = effective(c, stored, gpc);
      const refused = c.purposes.filter(p => stored && stored.d[p.key] && gpcRefuses(c, p, gpc)).map(p => p.key);
      return {ask, refused, recordGpc: refused.length > 0 || ask && gpc && c.mode == 'opt_out'};
    },

    /** The body that records `action`: Reject all over an earlier grant is a withdrawal. */
    request(action, decisions, pageUrl) {
      if (action == 'reject_all' && stored && grantsAny(config, stored.d)) action = 'withdraw';
      const body = {action, decisions: decisions || {}, notice_version: config.notice.version, locale: config.locale,
        page_url: pageUrl, gpc};
      if (stored && stored.v) body.visitor_id = stored.v;
      return body;
    },

    /** Keep the service's answer to a recorded decision. */
    remember(r) {
      const d = Object.assign({}, stored && stored.d);
      for (const k in r.decisions) d[k] = r.decisions[k] == 'granted';
      // A choice this decision left alone keeps its own end: the cookie lasts until the first of them runs out.
      const kept = stored && Object.keys(stored.d).some(k => !(k in r.decisions));
      const x = Date.parse(r.expires_at);
      save({v: r.visitor_id, d, n: r.notice_version, t: Date.parse(r.received_at), x: kept ? Math.min(x, stored.x) : x,
        r: r.event_id, u: r.receipt_url});
    },

    /**
     * The service could not record `body`: whether it takes effect all the same. Refusals do, kept for the refusal
     * lifetime; GPC's needs no cookie (effective() applies it; the record is tried again on the next visit).
     * Grants count only once recorded.
     */
    unrecorded(body) {
      if (body.action == 'gpc') return true;
      if (body.action == 'accept_all' || Object.values(body.decisions).includes('granted')) return false;
      const d = Object.assign({}, stored && stored.d);
      for (const p of config.purposes) {
        if (p.refusable && (body.action != 'save' || p.key in body.decisions)) d[p.key] = false;
      }
      const now = Date.now();
      const x = now + config.lifetimes.refusal_days * 864e5;
      save({v: stored && stored.v, d, n: config.notice.version, t: now, x});
      return true;
    },

    /** Put the stored decisions into effect; returns the purposes this revokes. */
    settle() {
      const next = effective(config, stored, gpc);
      const revoked = Object.keys(state).filter(k => state[k] && !next[k]);
      state = next;
      return revoked;
    },
  };
}

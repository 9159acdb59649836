/* Google Consent Mode v2 through the page's dataLayer. */
// uses: GCM_TYPES, WAIT_FOR_UPDATE
// provides: consentDefault, consentUpdate

window.dataLayer = window.dataLayer || [];

function gtag() {
  window.dataLayer.push(arguments);
}

/** Each Consent Mode type: granted for security, and for a granted purpose that maps to it; else denied. */
function consentTypes(purposes, decisions) {
  const c = {};
  for (const t of GCM_TYPES) c[t] = t == 'security_storage' ? 'granted' : 'denied';
  for (const p of purposes) {
    for (const t of p.consent_mode) if (decisions[p.key]) c[t] = 'granted';
  }
  return c;
}

/** Everything denied but security, before any Google tag reads it. */
function consentDefault() {
  gtag('consent', 'default', Object.assign(consentTypes([], {}), {wait_for_update: WAIT_FOR_UPDATE}));
}

/** One update per decision, through the site's purpose mapping. */
function consentUpdate(config, decisions) {
  gtag('consent', 'update', consentTypes(config.purposes, decisions));
}

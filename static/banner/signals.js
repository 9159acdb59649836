/* Google Consent Mode v2 through the page's dataLayer. */

window.dataLayer = window.dataLayer || [];

function gtag() {
  window.dataLayer.push(arguments);
}

/** Everything denied but security, before any Google tag reads it. */
function consentDefault() {
  const c = {};
  for (const t of GCM_TYPES) c[t] = t == 'security_storage' ? 'granted' : 'denied';
  c.wait_for_update = WAIT_FOR_UPDATE;
  gtag('consent', 'default', c);
}

/** One update per decision, through the site's purpose mapping. */
function consentUpdate(config, decisions) {
  const c = {};
  for (const t of GCM_TYPES) c[t] = t == 'security_storage' ? 'granted' : 'denied';
  for (const p of config.purposes) {
    for (const t of p.consent_mode) if (decisions[p.key]) c[t] = 'granted';
  }
  gtag('consent', 'update', c);
}

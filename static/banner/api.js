/* Talking to the service: the banner configuration, and recording decisions. */
// uses: TIMEOUT
// provides: fetchConfig, record

function call(url, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT);
  const init = {mode: 'cors', credentials: 'omit', signal: abort.signal};
  if (body) Object.assign(init, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  return fetch(url, init)
    .then(r => r.json().then(j => {
      if (!r.ok) throw j.error || {code: 'http_' + r.status};
      return j;
    }))
    .finally(() => clearTimeout(timer));
}

function fetchConfig(base, site, locale) {
  return call(base + '/api/v1/sites/' + encodeURIComponent(site) + '/banner-config?locale=' + encodeURIComponent(locale));
}

/** Post a decision set; an id the service did not sign is replaced by the fresh one it offers. */
function record(base, site, body) {
  const url = base + '/api/v1/sites/' + encodeURIComponent(site) + '/consents';
  return call(url, body).catch(e => {
    if (!(e && e.code == 'invalid_visitor_id')) throw e;
    body.visitor_id = e.details.visitor_id;
    return call(url, body);
  });
}

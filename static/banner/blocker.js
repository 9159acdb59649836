/* Blocked scripts, iframes and pixels run only once their purpose is granted (ePrivacy Art. 5(3)). */
// uses: ATTR, DONE
// provides: unblock, ran, clearTrackers, watch

/**
 * Run or load each marked element in `root` (default: the page) whose purpose is granted; `onBlocked` gets each
 * iframe still blocked.
 */
function unblock(granted, onBlocked, root) {
  const marked = '[' + ATTR + ']';
  const els = [...(root || document).querySelectorAll(marked)];
  if (root && root.matches(marked)) els.unshift(root);
  for (const el of els) {
    if (el.hasAttribute(DONE)) continue;
    if (granted[el.getAttribute(ATTR)]) enable(el);
    else if (el.tagName == 'IFRAME') onBlocked(el);
  }
}

function enable(el) {
  el.setAttribute(DONE, '');
  if (el.tagName == 'SCRIPT') {
    const s = document.createElement('script');
    for (const a of el.attributes) if (a.name != 'type' && a.name.indexOf('data-cmp') != 0) s.setAttribute(a.name, a.value);
    s.async = false;
    s.text = el.text;
    el.after(s);
    return;
  }
  const src = el.getAttribute('data-src');
  if (src) el.src = src;
  const placeholder = el.previousElementSibling;
  if (placeholder && placeholder.className == 'cmp-placeholder') placeholder.remove();
  el.hidden = false;
}

/** Whether anything of these purposes has already run on this page. */
function ran(purposes) {
  return purposes.some(p => document.querySelector('[' + ATTR + '="' + p + '"][' + DONE + ']'));
}

/** Delete the inventory's cookies and storage keys of withdrawn purposes, on this host and its parents. */
function clearTrackers(config, purposes) {
  const parts = location.hostname.split('.');
  const domains = [''];
  for (let i = 0; i < parts.length - 1; i++) domains.push(';domain=.' + parts.slice(i).join('.'));
  for (const c of config.cookies) {
    if (purposes.indexOf(c.purpose) < 0) continue;
    if (c.kind == 'local_storage') localStorage.removeItem(c.name);
    if (c.kind != 'cookie') continue;
    for (const d of c.domain ? domains.concat(';domain=' + c.domain) : domains) {
      document.cookie = c.name + '=;path=/;max-age=0' + d;
    }
  }
}

/** Elements added later are held back the same way; only the added ones (and what they contain) are looked at. */
function watch(granted, onBlocked) {
  new MutationObserver(changes => {
    for (const c of changes) for (const n of c.addedNodes) if (n.nodeType == 1) unblock(granted(), onBlocked, n);
  }).observe(document.documentElement, {childList: true, subtree: true});
}

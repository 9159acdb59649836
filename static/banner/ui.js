/* The banner's two layers, the settings control and iframe placeholders. Nothing here decides. */
// uses: CSS, ATTR
// provides: createUI

/** Build an element: `on*` props are listeners, `text` is text content, the rest are attributes. */
function h(tag, props, kids) {
  const el = document.createElement(tag);
  for (const k in props || {}) {
    const v = props[k];
    if (v == null || v === false) continue;
    if (k.indexOf('on') == 0) el.addEventListener(k.slice(2), v);
    else if (k == 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids || []) if (c != null && c !== false) el.append(c);
  return el;
}

function fill(text, name) {
  return text.replace('{purpose}', name);
}

function lifetime(c, t, locale) {
  const s = c.lifetime_seconds;
  if (c.storage == 'session' || !s) return '—';
  const [unit, size] = s % 31536000 == 0 ? ['year', 31536000] : s >= 86400 ? ['day', 86400] : s >= 3600 ? ['hour', 3600] : ['minute', 60];
  return new Intl.NumberFormat(locale, {style: 'unit', unit: unit, unitDisplay: 'long'}).format(Math.round(s / size));
}

/**
 * @param {Object} config  the banner configuration
 * @param {{decide: function(string, Object=): Promise, current: function(): Object, receipt: function(): ?string}} actions
 */
function createUI(config, actions, nonce) {
  const t = config.texts;
  const root = h('div', {class: 'cmp-root', dir: config.direction, lang: config.locale});
  let banner = null;
  let modal = null;
  let opener = null;
  const button = (label, onclick) => h('button', {type: 'button', class: 'cmp-btn', text: label, onclick});
  const errorLine = () => h('p', {class: 'cmp-error', role: 'alert'});

  const style = h('style', {nonce, text: CSS});
  const settings = h('button', {type: 'button', class: 'cmp-settings', 'aria-haspopup': 'dialog', text: t.settings,
    onclick: () => openPreferences()});
  root.append(settings);
  document.head.append(style);
  document.body.append(root);

  // One layer at a time, and the settings button only when neither is open: on a phone each would show
  // around or through the other.
  function layers() {
    if (banner) banner.hidden = !!modal;
    settings.hidden = !!(banner || modal);
  }

  function showBanner() {
    if (banner) return;
    const names = config.purposes.map(p => p.name).join(' · ');
    banner = h('section', {class: 'cmp-banner', role: 'dialog', 'aria-labelledby': 'cmp-title', 'aria-describedby': 'cmp-desc', tabindex: '-1',
      onkeydown: e => e.key == 'Escape' && hideBanner()}, [
      h('h2', {id: 'cmp-title', text: t.title}),
      h('p', {id: 'cmp-desc', text: t.description}),
      h('p', {class: 'cmp-summary', text: names}),
      config.policy_url && h('p', {}, [h('a', {href: config.policy_url, text: t.policy_link})]),
      errorLine(),
      h('div', {class: 'cmp-actions'}, [
        button(t.accept_all, acceptAll),
        button(t.reject_all, () => actions.decide('reject_all')),
        button(t.customise, () => openPreferences()),
      ]),
    ]);
    root.prepend(banner);
    layers();
    banner.focus();
  }

  function hideBanner() {
    if (!banner) return;
    const hadFocus = banner.contains(document.activeElement);
    banner.remove();
    banner = null;
    layers();
    if (hadFocus) settings.focus();
  }

  // A separate consent (PIPL Art. 23, 39) is its own act: never part of Accept all or Save choices, but asked
  // for alone, showing what the law says the person must be told; "I agree" sends that one grant and nothing else.
  const separate = config.purposes.filter(p => p.separate_consent);

  /** Accept all, then each separate consent not yet given, one dialog at a time (none if the choice failed). */
  function acceptAll() {
    actions.decide('accept_all').then(() => banner || modal || ask(separate.filter(p => !actions.current()[p.key])));
  }

  function ask(queue) {
    const p = queue[0];
    if (!p) return;
    const [details, choices] = separateParts(p, null, () => ask(queue.slice(1)));
    dialog(p.name, [h('p', {text: t.separate}), h('p', {text: p.description}), details, errorLine(), choices]);
  }

  /** What a separate consent shows, and its two answers; `on` ('true', 'false' or null) marks the current one. */
  function separateParts(p, on, then) {
    // The next question comes once this answer is recorded; a failure keeps the dialog open with its message.
    const choose = (label, v, pressed) => h('button', {type: 'button', class: 'cmp-btn', text: label,
      'aria-pressed': on && String(on == pressed),
      onclick: () => actions.decide('save', {[p.key]: v}).then(() => modal || then && then())});
    return [
      h('dl', {class: 'cmp-separate'}, [
        h('dt', {text: t.recipients}),
        ...p.recipients.map(r => h('dd', {text: r.contact ? r.name + ' (' + r.contact + ')' : r.name})),
        ...['means', 'categories', 'rights'].flatMap(k => [h('dt', {text: t[k]}), h('dd', {text: p[k]})]),
      ]),
      h('div', {class: 'cmp-actions'}, [choose(t.agree, 'granted', 'true'), choose(t.decline, 'denied', 'false')]),
    ];
  }

  function purposeBlock(p, on) {
    const cookies = config.cookies.filter(c => c.purpose == p.key);
    const id = 'cmp-p-' + p.key;
    const own = p.separate_consent;
    return h('div', {class: 'cmp-purpose', role: own && 'group', 'aria-labelledby': own && id}, [
      h('div', {class: 'cmp-row'}, [
        own ? h('strong', {id, text: p.name}) : h('label', {for: id, text: p.name}),
        !own && h('input', {type: 'checkbox', role: 'switch', id, 'data-p': p.key, checked: on, disabled: !p.refusable,
          'aria-describedby': id + '-d'}),
        !p.refusable && h('span', {class: 'cmp-always', text: t.always_on}),
      ]),
      h('p', {id: id + '-d', text: p.description}),
      ...(own ? separateParts(p, String(on)) : []),
      cookies.length ? h('details', {}, [
        h('summary', {text: t.cookies + ' (' + cookies.length + ')'}),
        h('table', {}, [
          h('thead', {}, [h('tr', {}, [t.name, t.provider, t.type, t.lifetime].map(x => h('th', {scope: 'col', text: x})))]),
          h('tbody', {}, cookies.map(c => h('tr', {}, [c.name, c.provider, t[c.storage], lifetime(c, t, config.locale)]
            .map(x => h('td', {text: x}))))),
        ]),
      ]) : null,
    ]);
  }

  /** The second layer, or a separate consent's own: modal, focus inside, Escape and × close without deciding. */
  function dialog(title, kids) {
    opener = document.activeElement;
    const box = h('div', {class: 'cmp-modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'cmp-prefs-title', tabindex: '-1'}, [
      h('h2', {id: 'cmp-prefs-title', text: title}),
      ...kids,
      h('button', {type: 'button', class: 'cmp-close', 'aria-label': t.close, text: '×', onclick: closePreferences}),
    ]);
    modal = h('div', {class: 'cmp-overlay', onkeydown: trap}, [box]);
    root.append(modal);
    layers();
    box.focus();
  }

  function openPreferences() {
    if (modal) return;
    const current = actions.current();
    const receipt = actions.receipt();
    dialog(t.title, [
      ...config.purposes.map(p => purposeBlock(p, !!current[p.key])),
      receipt && t.receipt && h('p', {}, [h('a', {href: receipt, target: '_blank', rel: 'noopener', text: t.receipt})]),
      errorLine(),
      h('div', {class: 'cmp-actions'}, [
        button(t.save, () => actions.decide('save', chosen())),
        button(t.accept_all, acceptAll),
        button(t.reject_all, () => actions.decide('reject_all')),
      ]),
    ]);
  }

  function chosen() {
    const out = {};
    for (const input of modal.querySelectorAll('input[data-p]')) {
      if (!input.disabled) out[input.getAttribute('data-p')] = input.checked ? 'granted' : 'denied';
    }
    return out;
  }

  function closePreferences() {
    if (!modal) return;
    modal.remove();
    modal = null;
    layers();
    (opener && opener.isConnected ? opener : banner || settings).focus();
  }

  // Keyboard: Escape closes without saving; Tab stays inside the dialog.
  function trap(e) {
    if (e.key == 'Escape') return closePreferences();
    if (e.key != 'Tab') return;
    const items = [...modal.querySelectorAll('button, input:not([disabled]), summary, a[href]')];
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && document.activeElement == first) {
      last.focus();
      e.preventDefault();
    } else if (!e.shiftKey && document.activeElement == last) {
      first.focus();
      e.preventDefault();
    }
  }

  function placeholder(iframe) {
    if (iframe.previousElementSibling && iframe.previousElementSibling.className == 'cmp-placeholder') return;
    const p = config.purposes.find(x => x.key == iframe.getAttribute(ATTR));
    const name = p ? p.name : iframe.getAttribute(ATTR);
    iframe.hidden = true;
    iframe.before(h('div', {class: 'cmp-placeholder'}, [
      h('p', {text: fill(t.placeholder, name)}),
      p && button(fill(t.allow, name), () => actions.decide('save', {[p.key]: 'granted'})),
    ]));
  }

  /** A decision could not be recorded: say so in the open layer. */
  function error() {
    for (const el of root.querySelectorAll('.cmp-error')) el.textContent = t.error;
  }

  function done() {
    closePreferences();
    hideBanner();
  }

  return {showBanner, hideBanner, openPreferences, placeholder, error, done};
}

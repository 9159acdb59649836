// Load banner modules in Node as the bundle does: each in its own scope, given only the names it declares it uses.

import {readFileSync} from 'node:fs';

const SOURCE = new URL('../../../static/banner/', import.meta.url);

function declared(source, kind) {
  const lines = source.match(new RegExp('^// ' + kind + ':.*$', 'gm')) || [];
  return lines.flatMap(line => line.slice(kind.length + 4).match(/[A-Za-z_$][\w$]*/g) || []);
}

/**
 * Run `names` (files of static/banner, in order) and return what they provide. `globals` stands in for the
 * browser (document, location...): a module that touches anything else of it while loading fails here.
 */
export function load(names, globals = {}) {
  const provided = {};
  for (const name of names) {
    const source = readFileSync(new URL(name, SOURCE), 'utf8');
    const uses = declared(source, 'uses');
    for (const n of uses) if (!(n in provided)) throw new Error(name + ' uses ' + n + ', which is not loaded');
    const params = [...Object.keys(globals), ...uses];
    const body = "'use strict';\n" + source + '\nreturn {' + declared(source, 'provides').join(', ') + '};';
    Object.assign(provided, new Function(...params, body)(...Object.values(globals), ...uses.map(n => provided[n])));
  }
  return provided;
}

/** A browser's cookie jar for one page: what `document.cookie` reads, and every string written to it. */
export function cookieJar() {
  const cookies = new Map();
  const written = [];
  return {
    written,
    get cookie() {
      return [...cookies].map(([k, v]) => k + '=' + v).join('; ');
    },
    set cookie(line) {
      written.push(line);
      const [pair, ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const expired = attributes.some(a => a.trim() == 'max-age=0');
      if (expired) cookies.delete(pair.slice(0, at));
      else cookies.set(pair.slice(0, at), pair.slice(at + 1));
    },
  };
}

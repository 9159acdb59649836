/* cmp banner: names shared by the modules. Each module declares the names it uses from those before it (in the
   order of cmp/banner/bundle.py) and the names it provides; the build checks both and keeps the rest private. */
// provides: COOKIE, ATTR, DONE, GCM_TYPES, WAIT_FOR_UPDATE, TIMEOUT, MAX_AGE

const COOKIE = 'cmp_consent';
const ATTR = 'data-cmp-purpose';
const DONE = 'data-cmp-on';
// Google Consent Mode v2 consent types (developers.google.com/tag-platform/security/guides/consent).
const GCM_TYPES = ['ad_storage', 'ad_user_data', 'ad_personalization', 'analytics_storage',
  'functionality_storage', 'personalization_storage', 'security_storage'];
const WAIT_FOR_UPDATE = 500;
const TIMEOUT = 5000;
// CNIL 2020-092: a consent cookie lives at most 13 months.
const MAX_AGE = 395 * 86400;

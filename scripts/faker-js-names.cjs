// Prints the given names and surnames of every locale of npm `@faker-js/faker` as JSON
// ({"given": [...], "surnames": [...]}), for scripts/name-lists.py. The package is found
// on NODE_PATH; the version is checked there.
const faker = require('@faker-js/faker');
const { version } = require('@faker-js/faker/package.json');

// A joke locale ("Swedish Chef" English) names no one.
const SKIPPED = new Set(['en_BORK']);

// Name lists are arrays, arrays by sex, or weighted entries ({value, weight}).
function flat(list) {
  if (!list) return [];
  const values = Array.isArray(list) ? list : Object.values(list);
  return values.flat(Infinity).map((e) => (typeof e === 'string' ? e : e.value));
}

const given = new Set();
const surnames = new Set();
for (const [name, locale] of Object.entries(faker)) {
  if (!/^[a-z]{2}(_[A-Za-z_]+)?$/.test(name) || SKIPPED.has(name) || !locale?.person) continue;
  flat(locale.person.first_name).forEach((n) => given.add(n));
  flat(locale.person.last_name).forEach((n) => surnames.add(n));
}
console.log(JSON.stringify({ version, given: [...given], surnames: [...surnames] }));

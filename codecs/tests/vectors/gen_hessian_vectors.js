#!/usr/bin/env node
// Generates hessian_vectors.json: byte vectors produced by hessian.js (a
// third-party Hessian 2.0 implementation) that the metaproxy-codecs unit tests
// read back. Regenerate with:
//
//   mkdir -p /tmp/hessian-vectors && cd /tmp/hessian-vectors
//   npm init -y && npm install hessian.js@2.11.0
//   NODE_PATH=/tmp/hessian-vectors/node_modules \
//     node /path/to/codecs/tests/vectors/gen_hessian_vectors.js \
//     > /path/to/codecs/tests/vectors/hessian_vectors.json
'use strict';

const hessian = require('hessian.js');

function enc(values) {
  const e = new hessian.EncoderV2();
  for (const v of values) e.write(v);
  return e.get();
}

function hex(buf) {
  return buf.toString('hex');
}

// FNV-1a 64-bit over bytes, as a hex string (used for vectors too large to embed).
function fnv1a64(buf) {
  let h = 0xcbf29ce484222325n;
  for (const b of buf) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

// Single values: the reader must skip each exactly to its end.
// `int` holds the decimal rendering for ints, longs and booleans;
// `text` holds the expected string for strings.
const values = [];
function value(name, v, extra) {
  values.push(Object.assign({ name, hex: hex(enc([v])) }, extra || {}));
}

value('null', null);
value('true', true, { int: 'true' });
value('false', false, { int: 'false' });
for (const n of [0, 1, -16, 47, -17, 48, -2048, 2047, -2049, 2048, -262144, 262143, 262144,
  -262145, 2147483647, -2147483648]) {
  value('int ' + n, n, { int: String(n) });
}
for (const n of [0, -8, 15, -9, 16, -2048, 2047, -262144, 262143, 2147483647, -2147483648,
  3001010320, -3001010320, 9007199254740991]) {
  value('long ' + n, { $class: 'long', $: n }, { int: String(n) });
}
for (const d of [0, 1, 1.5, -128, 127, -32768, 32767, 3.14159, 1e100, -0.25, 100.5]) {
  value('double ' + d, { $class: 'double', $: d });
}
value('date millis', new Date(1700000000123));
value('date minutes', new Date(1700000040000));
for (const s of ['', 'a', 'hello', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(1023),
  'x'.repeat(1024), 'héllo 世界 😀', '😀', '😀'.repeat(16), 'é'.repeat(40), '中'.repeat(1100)]) {
  value('string ' + JSON.stringify(s.length > 40 ? s.slice(0, 8) + '...' + s.length : s), s,
    { text: s });
}
for (const n of [0, 1, 15, 16, 1023, 1024]) {
  value('binary ' + n, Buffer.alloc(n, 7));
}
value('untyped list short', [1, 'two', 3.5]);
value('untyped list long', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
value('empty list', []);
value('typed list short', { $class: 'java.util.ArrayList', $: ['a', 'b'] });
value('typed list long', { $class: '[int', $: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
value('untyped map', { a: 1, b: 'two', c: [1, 2] });
value('typed map', { $class: 'java.util.TreeMap', $: { k: 'v' } });
const longKeys = new Map();
longKeys.set({ $class: 'java.lang.Long', $: 123 }, 123456);
longKeys.set({ $class: 'java.lang.Long', $: 123456 }, 123);
value('map with long keys', longKeys);
value('object', { $class: 'com.example.User', $: { name: 'x', age: 3 } });
value('list of objects', [
  { $class: 'com.example.User', $: { name: 'a', age: 1 } },
  { $class: 'com.example.User', $: { name: 'b', age: 2 } },
  { $class: 'com.example.Point', $: { x: 1.5, y: null } },
  { $class: 'com.example.User', $: { name: 'c', age: 3 } },
]);
const circular = { name: 'loop' };
circular.self = circular;
value('circular map (ref)', circular);
value('nested', { outer: [{ inner: [[1, [2, [3]]]] }], when: new Date(1700000000000) });

// Strings our writer must encode byte for byte like hessian.js.
const strings = ['', 'a', 'dubbo', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(1023),
  'x'.repeat(1024), 'héllo 世界 😀', '😀', '😀'.repeat(16), 'é'.repeat(40),
  'metaproxy: route not found: no route for com.example.UserService']
  .map((text) => ({ text, hex: hex(enc([text])) }));

// Strings too long to embed: compared by length and FNV-1a hash.
const longStrings = [['x', 0x8000], ['x', 0x8001], ['a😀', 1], ['😀', 0x4001], ['yé中😀', 20000]]
  .map(([pattern, repeat]) => {
    // ['a😀', 1] means 'a' followed by 0x4000 emoji: a surrogate pair straddles the chunk limit.
    const text = repeat === 1 ? 'a' + '😀'.repeat(0x4000) : pattern.repeat(repeat);
    const buf = enc([text]);
    return { pattern, repeat, units: text.length, len: buf.length, fnv1a64: fnv1a64(buf) };
  });

// A whole Dubbo 2 request body, written with one encoder as Dubbo does
// (class definitions and type references are shared across the body).
const attachments = new Map([
  ['path', 'com.example.UserService'],
  ['interface', 'com.example.UserService'],
  ['version', '9.9.9'],
  ['group', 'blue'],
  ['batchJob', 'true'],
  ['timeout', '3000'],
  ['X-Trace', 'héllo 世界 😀'],
  ['retries', 2],
  ['sampled', true],
  ['tags', ['a', 'b']],
]);
const requestFields = ['2.0.2', 'com.example.UserService', '1.0.0', 'saveUser',
  'Ljava/lang/String;Lcom/example/User;Ljava/util/List;Ljava/util/Map;JD[Ljava/lang/String;IZ'];
const requestArgs = [
  'héllo 世界 😀',
  { $class: 'com.example.User', $: { name: 'x', age: 3 } },
  [1, 'two', { $class: 'com.example.User', $: { name: 'y', age: 4 } }],
  { a: 1, b: 'two' },
  { $class: 'long', $: 3001010320 },
  { $class: 'double', $: 2.5 },
  { $class: '[java.lang.String', $: ['p', 'q'] },
  42,
  false,
];
const request = {
  body_hex: hex(enc(requestFields.concat(requestArgs, [attachments]))),
  prefix_len: enc(requestFields.concat(requestArgs)).length,
  dubbo_version: requestFields[0],
  service: requestFields[1],
  version: requestFields[2],
  method: requestFields[3],
  descriptor: requestFields[4],
  args: requestArgs.length,
  attachments: { path: 'com.example.UserService', interface: 'com.example.UserService',
    version: '9.9.9', group: 'blue', batchJob: 'true', timeout: '3000', 'X-Trace': 'héllo 世界 😀',
    retries: '2', sampled: 'true' },
};

// A request without an attachments map and with an empty service version.
const bare = ['2.0.2', 'com.example.EchoService', '', '$echo', 'Ljava/lang/Object;', 'ping'];
const bareRequest = { body_hex: hex(enc(bare)), service: bare[1], method: bare[3] };

// An OK response: flag 4 (value with attachments), a typed object, then attachments.
const response = {
  body_hex: hex(enc([4, { $class: 'com.example.User', $: { name: 'z', age: 5 } },
    new Map([['traceId', 'abc'], ['cost', '12']])])),
  value_flag_only_hex: hex(enc([1, { $class: 'com.example.User', $: { name: 'z', age: 5 } }])),
};

process.stdout.write(JSON.stringify({
  generator: 'hessian.js ' + require('hessian.js/package.json').version,
  values,
  strings,
  long_strings: longStrings,
  request,
  bare_request: bareRequest,
  response,
}, null, 1) + '\n');

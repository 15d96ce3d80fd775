'use strict';
// Dubbo 2 (hessian2) test client built on sofa-rpc-node + dubbo-remoting: direct connect, or
// with --zk the providers read from a ZooKeeper registry (sofa-rpc-node's own registry client,
// Dubbo layout under /dubbo).
// Usage: node client.js (--port P [--host 127.0.0.1] | --zk HOST:PORT) [--method sayHello] [--arg bob]
//          [--count 1] [--concurrency 1] [--attach key=value]... [--timeout 3000] [--oneway]
//          [--version 1.0.0] [--dubbo-version 2.0.2] [--group ''] [--verbose] [--until-file F]
// --until-file: two-way calls go on past --count until the file F exists (load that
// spans an event the test controls, such as a reload).
// stdout: one line {"ok":N,"errors":N,"results":{...},"errorMessages":{...}}

const net = require('net');
const util = require('util');
const hessian = require('hessian.js');
const dubbo = require('dubbo-remoting');
const { RpcClient, DynamicConfig } = require('sofa-rpc-node').client;
const { ZookeeperRegistry } = require('sofa-rpc-node').registry;

const INTERFACE = 'org.apache.dubbo.samples.DemoService';
const DEFAULTS = {
  port: '', host: '127.0.0.1', method: 'sayHello', arg: 'bob', count: '1', concurrency: '1',
  attach: [], timeout: '3000', oneway: false, version: '1.0.0', 'dubbo-version': '2.0.2',
  group: '', verbose: false, zk: '', 'until-file': '',
};

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node client.js (--port P [--host 127.0.0.1] | --zk HOST:PORT) [--method sayHello] [--arg bob] ` +
    '[--count 1] [--concurrency 1] [--attach key=value]... [--timeout 3000] [--oneway] [--version 1.0.0] ' +
    "[--dubbo-version 2.0.2] [--group ''] [--verbose] [--until-file F]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = Object.assign({}, DEFAULTS, { attach: [] });
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || !(m[1] in DEFAULTS)) usage(`unknown argument: ${argv[i]}`);
    const key = m[1];
    if (typeof DEFAULTS[key] === 'boolean') { opts[key] = true; continue; }
    if (i + 1 >= argv.length) usage(`missing value for ${argv[i]}`);
    const val = argv[++i];
    if (key === 'attach') {
      const eq = val.indexOf('=');
      if (eq <= 0) usage(`--attach wants key=value, got ${val}`);
      opts.attach.push([ val.slice(0, eq), val.slice(eq + 1) ]);
    } else {
      opts[key] = val;
    }
  }
  for (const k of [ 'port', 'count', 'concurrency', 'timeout' ]) {
    if (!/^\d+$/.test(opts[k])) usage(`--${k} must be a non-negative integer`);
    opts[k] = Number(opts[k]);
  }
  if (opts.concurrency < 1) opts.concurrency = 1;
  opts.attachments = Object.fromEntries(opts.attach);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => { if (opts.verbose) process.stderr.write(util.format(...a) + '\n'); };
const logger = { debug() {}, info: log, warn: log, error: log };

const summary = { ok: 0, errors: 0, results: {}, errorMessages: {} };
const bump = (map, key) => { map[key] = (map[key] || 0) + 1; };
const recordOk = value => {
  summary.ok++;
  bump(summary.results, typeof value === 'string' ? value : JSON.stringify(value));
};
const recordError = err => {
  summary.errors++;
  bump(summary.errorMessages, err && err.message !== undefined ? String(err.message) : String(err));
};
function finish() {
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(0);
}

// Two-way calls through sofa-rpc-node's consumer: one connection, up to `concurrency` in flight.
async function runTwoWay() {
  // The stock client stops sending after >=50% errors (circuit breaker); tests want every call sent.
  DynamicConfig.instance.circuitBreaker.forceClosed = true;
  const registry = opts.zk ? new ZookeeperRegistry({ logger, address: `${opts.zk}/dubbo` }) : undefined;
  const client = new RpcClient({ logger, protocol: dubbo, registry });
  client.on('error', err => log('[client] error: %s', err.message));
  const consumer = client.createConsumer({
    interfaceName: INTERFACE,
    version: opts.version, // '' => no service version in the body, no `version` attachment
    group: opts.group, // sofa's default would be 'SOFA' (sent as the `group` attachment)
    serverHost: opts.zk ? undefined : `${opts.host}:${opts.port}`,
    responseTimeout: opts.timeout,
  });
  // With a registry, wait until it has named a provider.
  if (opts.zk) await consumer.ready();
  // The `dubbo` attachment also sets the dubbo version string in the body (library default 5.3.0).
  const requestProps = Object.assign({ dubbo: opts['dubbo-version'] }, opts.attachments);

  let next = 0;
  const fs = require('fs');
  const more = () => next < opts.count || (opts['until-file'] !== '' && !fs.existsSync(opts['until-file']));
  const worker = async () => {
    while (more()) {
      next++;
      try {
        recordOk(await consumer.invoke(opts.method, [ opts.arg ], {
          requestProps: Object.assign({}, requestProps),
          responseTimeout: opts.timeout,
        }));
      } catch (err) {
        recordError(err);
      }
    }
  };
  const workers = opts['until-file'] !== '' ? opts.concurrency : Math.min(opts.concurrency, opts.count);
  await Promise.all(Array.from({ length: workers }, worker));
}

// sofa-rpc-node always sets the two-way bit, so oneway requests are framed by hand.
function onewayFrame(id) {
  const enc = new hessian.EncoderV2();
  const attachments = Object.assign({ path: INTERFACE, interface: INTERFACE, version: opts.version }, opts.attachments);
  for (const v of [ opts['dubbo-version'], INTERFACE, opts.version, opts.method, 'Ljava/lang/String;', opts.arg ]) {
    enc.write(v);
  }
  enc.write(attachments);
  const body = enc.get();
  const head = Buffer.alloc(16);
  head.writeUInt16BE(0xdabb, 0);
  head[2] = 0x80 | 0x02; // request, hessian2; no two-way (0x40), no event (0x20)
  head[3] = 0;
  head.writeBigInt64BE(BigInt(id), 4);
  head.writeInt32BE(body.length, 12);
  return Buffer.concat([ head, body ]);
}

function runOneway() {
  return new Promise(resolve => {
    const socket = net.connect(opts.port, opts.host);
    socket.setNoDelay(true);
    socket.setTimeout(opts.timeout, () => socket.destroy(new Error(`connect timeout (${opts.timeout}ms)`)));
    socket.on('data', () => {}); // a compliant provider sends nothing back; ignore anything else
    let sent = 0;
    let done = false;
    const end = err => {
      if (done) return;
      done = true;
      summary.ok = sent;
      if (err || sent < opts.count) {
        for (let i = sent; i < opts.count; i++) recordError(err || new Error('socket closed before send'));
      }
      socket.destroy();
      resolve();
    };
    socket.on('error', end);
    socket.on('close', () => end());
    socket.on('connect', () => {
      socket.setTimeout(0);
      let pending = opts.count;
      if (pending === 0) return setTimeout(end, 300);
      for (let i = 1; i <= opts.count; i++) {
        socket.write(onewayFrame(i), err => {
          if (!err) sent++;
          if (--pending === 0) setTimeout(end, 300);
        });
      }
    });
  });
}

(opts.oneway ? runOneway() : runTwoWay()).then(finish, err => {
  recordError(err);
  finish();
});

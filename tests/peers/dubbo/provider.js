'use strict';
// Dubbo 2 (hessian2) test provider built on sofa-rpc-node + dubbo-remoting.
// Usage: node provider.js --tag NAME [--port 0] [--host 127.0.0.1] [--version 1.0.0] [--delay-ms 0] [--verbose]
//        [--zk HOST:PORT --group GROUP]: also register in ZooKeeper (Dubbo layout under /dubbo) with
//        sofa-rpc-node's own ZooKeeper registry client (an ephemeral provider node).
// stdout: {"event":"listening","port":N} once, then one {"event":"call",...} line per request.

const fs = require('fs');
const net = require('net');
const util = require('util');
const hessian = require('hessian.js');
const java = require('js-to-java');
const dubbo = require('dubbo-remoting');
const dubboPackets = require('dubbo-remoting/lib/protocol');
const { desc2classArray } = require('dubbo-remoting/lib/utils');
const { RpcServer } = require('sofa-rpc-node').server;
const { ZookeeperRegistry } = require('sofa-rpc-node').registry;
const RpcResponse = require('sofa-rpc-node/lib/server/response');

const INTERFACE = 'org.apache.dubbo.samples.DemoService';

function parseArgs(argv, defaults) {
  const opts = Object.assign({}, defaults);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || !(m[1] in defaults)) usage(`unknown argument: ${argv[i]}`);
    if (typeof defaults[m[1]] === 'boolean') opts[m[1]] = true;
    else if (i + 1 < argv.length) opts[m[1]] = argv[++i];
    else usage(`missing value for ${argv[i]}`);
  }
  return opts;
}

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node provider.js --tag NAME [--port 0] [--host 127.0.0.1] [--version 1.0.0] [--delay-ms 0] [--verbose]\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2), { tag: '', port: '0', host: '127.0.0.1', version: '1.0.0', 'delay-ms': '0', verbose: false, zk: '', group: '' });
const DELAY_MS = Number(opts['delay-ms']);
if (!opts.tag) usage('--tag is required');

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');
// The library logs a lot (and a stack per thrown error); keep it off stdout and quiet by default.
const log = (...a) => { if (opts.verbose) process.stderr.write(util.format(...a) + '\n'); };
const logger = { debug() {}, info: log, warn: log, error: log };

// dubbo-remoting's decoder drops the two-way flag and merges the attachments with the body
// fields. Re-read the header flag and the raw invocation so we can log what was on the wire and
// skip replying to oneway requests (a real Dubbo provider never answers those).
const originalDecode = dubboPackets.decode;
dubboPackets.decode = (buf, options) => {
  const packet = originalDecode(buf, options);
  if (packet.packetType === 'request' && packet.data && packet.data.methodName) {
    const d = new hessian.DecoderV2(buf.slice(16));
    const wire = { twoWay: (buf[2] & 0x40) !== 0 };
    wire.dubboVersion = d.read();
    wire.path = d.read();
    wire.version = d.read();
    d.read(); // method name
    const argCount = desc2classArray(d.read()).length;
    for (let i = 0; i < argCount; i++) d.read();
    wire.attachments = d.read() || {};
    packet.wire = wire;
  }
  return packet;
};

class OnewayAwareResponse extends RpcResponse {
  async send(res) {
    if (this.req.wire && !this.req.wire.twoWay) return; // oneway: no response frame
    return super.send(res);
  }
}

class Provider extends RpcServer {
  // The stock server listens on all interfaces; bind the requested host only.
  _startServer(port) {
    const server = net.createServer(socket => this._handleSocket(socket));
    server.once('error', err => this.emit('error', err));
    server.listen(port, opts.host, () => {
      // The published URL carries the port the system picked.
      if (port === 0 && this.publishPort === 0) this.publishPort = server.address().port;
    });
    return server;
  }

  // Service methods run with `this` = this context, which gives them the request.
  createContext(req) {
    return { req };
  }
}

// sofa-rpc-node encodes falsy results without the result-flag byte; send such values typed.
const safe = v => (v === '' ? java.String('') : v);
const VOID = java('java.lang.Object', null);

const server = new Provider({
  logger,
  protocol: dubbo,
  port: Number(opts.port),
  version: opts.version,
  responseClass: OnewayAwareResponse,
  // With --zk: sofa-rpc-node's ZooKeeper registry, rooted at Dubbo's /dubbo.
  registry: opts.zk ? new ZookeeperRegistry({ logger, address: `${opts.zk}/dubbo` }) : undefined,
  publishAddress: opts.host,
  group: opts.group || undefined,
});

// Service methods must be `async` functions (sofa-rpc-node rejects plain ones).
server.addService({ interfaceName: INTERFACE, version: opts.version }, {
  async sayHello(name) {
    if (DELAY_MS > 0) await new Promise(resolve => setTimeout(resolve, DELAY_MS)); // a slow provider
    return safe(`Hello ${name}, from ${opts.tag}`);
  },
  async getAttachment(key) {
    const v = this.req.wire.attachments[key];
    if (v === undefined || v === null) return '<absent>';
    return safe(typeof v === 'string' ? v : JSON.stringify(v));
  },
  async fail(msg) {
    throw new Error(msg); // -> response status 80 (SERVER_ERROR), body = hessian string msg
  },
  async failWithException(msg) {
    return new Error(msg); // -> status 20, result flag 0 + java.lang.Exception object
  },
  async sleep(ms) {
    await new Promise(resolve => setTimeout(resolve, Number(ms)));
    return safe(`slept ${ms}`);
  },
  async notify() {
    return VOID;
  },
});

server.on('error', err => log('[provider] error: %s', err && err.message));
server.on('request', ({ req }) => {
  const wire = req.wire || {};
  emit({
    event: 'call',
    method: req.data.methodName,
    args: req.data.args,
    attachments: wire.attachments || {},
    tag: opts.tag,
    oneway: wire.twoWay === false,
    dubboVersion: wire.dubboVersion,
    service: wire.path,
    serviceVersion: wire.version,
  });
});

function shutdown() {
  for (const s of server._servers) s.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Exit when our parent closes stdin, but only if stdin is a pipe/socket (not /dev/null or a tty).
let stdinStat = null;
try { stdinStat = fs.fstatSync(0); } catch (_) { /* no stdin */ }
if (stdinStat && (stdinStat.isFIFO() || stdinStat.isSocket())) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}

server.start().then(async () => {
  const port = server._servers[0].address().port;
  if (opts.zk) await server.publish(); // resolves once the node is readable back
  emit({ event: 'listening', port, registered: !!opts.zk });
}, err => {
  process.stderr.write(`listen failed: ${err.message}\n`);
  process.exit(1);
});

// A TLS client tunnel made of Node's own `tls` module: plain TCP clients
// that cannot speak TLS themselves (the sofa-rpc-node Dubbo client)
// connect to it, and it carries their bytes over TLS to --connect,
// verifying the server against --ca (and presenting --cert/--key).
//
// Usage: node tunnel.js --connect HOST:PORT --ca CA.pem [--servername NAME]
//                       [--cert C.pem --key K.pem]
// Prints {"event":"listening","port":N}, then one line per tunnel that
// fails its handshake: {"event":"tls_error","error":"..."}.
'use strict';
const fs = require('fs');
const net = require('net');
const tls = require('tls');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const [host, port] = args.connect.split(':');
const options = {
  host,
  port: Number(port),
  ca: fs.readFileSync(args.ca),
  servername: args.servername || 'localhost',
};
if (args.cert) {
  options.cert = fs.readFileSync(args.cert);
  options.key = fs.readFileSync(args.key);
}

const server = net.createServer((plain) => {
  const secure = tls.connect(options);
  secure.on('error', (e) => {
    console.log(JSON.stringify({ event: 'tls_error', error: e.message }));
    plain.destroy();
  });
  plain.on('error', () => secure.destroy());
  plain.pipe(secure);
  secure.pipe(plain);
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'listening', port: server.address().port }));
});

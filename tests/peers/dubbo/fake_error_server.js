'use strict';
// Raw Dubbo endpoint that answers every two-way request with an error status and a hessian2
// string body (default: status 60 SERVICE_NOT_FOUND, "no route for test"). Heartbeats get a
// normal heartbeat response. Used to check how client.js surfaces error statuses.
// Usage: node fake_error_server.js [--port 0] [--host 127.0.0.1] [--status 60] [--message TEXT]
// stdout: {"event":"listening","port":N}, then one {"event":"frame",...} line per frame received.

const net = require('net');
const hessian = require('hessian.js');

const opts = { port: '0', host: '127.0.0.1', status: '60', message: 'no route for test' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = (argv[i] || '').replace(/^--/, '');
  if (!(key in opts) || i + 1 >= argv.length) {
    process.stderr.write('usage: node fake_error_server.js [--port 0] [--host 127.0.0.1] [--status 60] [--message TEXT]\n');
    process.exit(2);
  }
  opts[key] = argv[i + 1];
}

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');

function frame(flags, status, idBuf, body) {
  const head = Buffer.alloc(16);
  head.writeUInt16BE(0xdabb, 0);
  head[2] = flags;
  head[3] = status;
  idBuf.copy(head, 4);
  head.writeInt32BE(body.length, 12);
  return Buffer.concat([ head, body ]);
}

const server = net.createServer(socket => {
  let buf = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.on('data', chunk => {
    buf = Buffer.concat([ buf, chunk ]);
    while (buf.length >= 16) {
      if (buf.readUInt16BE(0) !== 0xdabb) return socket.destroy();
      const len = buf.readInt32BE(12);
      if (buf.length < 16 + len) break;
      const flags = buf[2];
      const idBuf = buf.slice(4, 12);
      const isEvent = (flags & 0x20) !== 0;
      const twoWay = (flags & 0x40) !== 0;
      emit({ event: 'frame', flags, id: idBuf.readBigInt64BE(0).toString(), request: (flags & 0x80) !== 0, twoWay, isEvent, bodyLength: len });
      if ((flags & 0x80) && twoWay) {
        if (isEvent) {
          socket.write(frame(0x22, 20, idBuf, hessian.encode(null, '2.0'))); // heartbeat response
        } else {
          socket.write(frame(0x02, Number(opts.status), idBuf, hessian.encode(opts.message, '2.0')));
        }
      }
      buf = buf.slice(16 + len);
    }
  });
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
server.listen(Number(opts.port), opts.host, () => emit({ event: 'listening', port: server.address().port }));

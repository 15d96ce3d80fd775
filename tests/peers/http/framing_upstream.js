// A strict third-party HTTP/1.1 upstream for tests/http_framing.rs: Node's
// own `http` server (llhttp, strict mode: no insecureHTTPParser), no
// dependencies. It answers every request it parsed with a body naming the
// method, the path and the body length, and logs one JSON line per event
// on stdout:
//   {"event":"listening","port":N}             once, first
//   {"event":"open","conn":C}                  a connection was accepted
//   {"event":"request","conn":C,"method":..,"path":..,"length":N,
//    "te":..,"cl":..}                           a request was parsed whole
//   {"event":"error","conn":C,"code":..}        llhttp refused the bytes
//   {"event":"close","conn":C}                 a connection closed (after
//                                                every request it carried)
'use strict';

const http = require('http');

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let next = 0;
const server = http.createServer({ requireHostHeader: true }, (req, res) => {
  let length = 0;
  req.on('data', (chunk) => {
    length += chunk.length;
  });
  req.on('end', () => {
    log({
      event: 'request',
      conn: req.socket.connId,
      method: req.method,
      path: req.url,
      length,
      te: req.headers['transfer-encoding'] || null,
      cl: req.headers['content-length'] || null,
    });
    const body = `${req.method} ${req.url} ${length}\n`;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});

server.on('connection', (socket) => {
  socket.connId = next++;
  log({ event: 'open', conn: socket.connId });
  socket.on('close', () => log({ event: 'close', conn: socket.connId }));
});

server.on('clientError', (err, socket) => {
  log({ event: 'error', conn: socket.connId, code: err.code || String(err) });
  if (socket.writable) {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  } else {
    socket.destroy();
  }
});

server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  log({ event: 'listening', port: server.address().port });
});

// The test ends the peer by closing its stdin (or killing it).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

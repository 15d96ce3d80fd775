// A streaming HTTP/1.1 upstream for tests/http_timeouts.rs: Node's own
// `http` server, no dependencies. Prints {"event":"listening","port":N}
// once, then answers:
//   GET /<any>/drip/N/MS   200, chunked: N chunks of "chunk K\n", MS apart
//   GET /<any>/stall       200, chunked: one chunk, then silence (never ends)
'use strict';

const http = require('http');

const server = http.createServer((req, res) => {
  const drip = req.url.match(/\/drip\/(\d+)\/(\d+)$/);
  res.writeHead(200, { 'content-type': 'text/plain' });
  if (drip) {
    const count = Number(drip[1]);
    const every = Number(drip[2]);
    let sent = 0;
    const tick = () => {
      if (res.destroyed) return;
      res.write(`chunk ${sent}\n`);
      sent += 1;
      if (sent === count) {
        res.end();
      } else {
        setTimeout(tick, every);
      }
    };
    tick();
  } else {
    res.write('first and last chunk\n');
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port }) + '\n');
});

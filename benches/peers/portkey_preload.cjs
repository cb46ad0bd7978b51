// Preloaded into Portkey's gateway by `llm-benches load --peer portkey` (`node --require`).
//
// 1. Loopback only. Portkey's start-server.js calls @hono/node-server's serve({port}) without a host, which
//    listens on every interface. Every TCP listen() of this process without a loopback host is given
//    127.0.0.1 instead; the bench also checks the sockets the process listens on before measuring it.
// 2. Streaming on Node 20. Portkey adds headers to the upstream fetch() Response, whose headers are immutable
//    on Node 20, so stream:true answers fail with HTTP 500 "TypeError: immutable". Each fetch Response is
//    rebuilt around the same body stream, which makes its headers mutable (one object more per upstream call).
'use strict';
const net = require('net');

const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]); a unix socket (path) is left alone.
    if (first.path === undefined && !LOOPBACK.includes(first.host)) {
      args[0] = { ...first, host: '127.0.0.1' };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^[0-9]+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string') {
      if (!LOOPBACK.includes(args[1])) args[1] = '127.0.0.1';
    } else if (args[1] === undefined || args[1] === null) {
      args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  }
  return listen.apply(this, args);
};

if (typeof globalThis.fetch === 'function') {
  const fetch = globalThis.fetch;
  globalThis.fetch = async (...args) => {
    const res = await fetch(...args);
    return new Response(res.body, res);
  };
}

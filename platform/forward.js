#!/usr/bin/env node
// A byte pipe between two socket addresses, one process per direction of the netns boundary:
//   node forward.js <listen> <target>     with each address tcp:HOST:PORT or unix:PATH
// The harness runs Tekton's webhook inside a network namespace of its own (so the API server
// reaches it at an address that exists only there). A Unix socket is not bound to a network
// namespace, so a pair of these carries the webhook's own API calls from that namespace's loopback
// to the API server on the host's loopback. Plain JavaScript: it runs with `node`, no compiler.
'use strict';
const net = require('node:net');
const fs = require('node:fs');

function parse(addr) {
  if (addr.startsWith('unix:')) return { path: addr.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad address ${addr}: use tcp:HOST:PORT or unix:PATH`);
  return { host: m[1], port: Number(m[2]) };
}

const [listenAddr, targetAddr] = process.argv.slice(2);
if (!listenAddr || !targetAddr) {
  process.stderr.write('usage: forward.js <listen tcp:HOST:PORT|unix:PATH> <target tcp:HOST:PORT|unix:PATH>\n');
  process.exit(2);
}
const listen = parse(listenAddr);
const target = parse(targetAddr);
if (listen.path) fs.rmSync(listen.path, { force: true });

const server = net.createServer((inbound) => {
  const outbound = net.connect(target);
  inbound.pipe(outbound);
  outbound.pipe(inbound);
  const close = () => { inbound.destroy(); outbound.destroy(); };
  inbound.on('error', close);
  outbound.on('error', close);
  inbound.on('close', close);
  outbound.on('close', close);
});
server.on('error', (e) => { process.stderr.write(`forward ${listenAddr}: ${e.message}\n`); process.exit(1); });
server.listen(listen, () => process.stdout.write(`forwarding ${listenAddr} -> ${targetAddr}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });

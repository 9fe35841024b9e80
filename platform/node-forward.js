// A TCP forwarder the real-node tier runs as its own process (started and stopped by PID): it listens
// on the host end of the node's veth pair and forwards to the API server on loopback, so that the
// node's daemons, inside their own network namespace, reach an API server that listens on 127.0.0.1
// only. Plain JavaScript so that it starts without a TypeScript toolchain.
//   node node-forward.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT
'use strict';
const net = require('node:net');
const [listenHost, listenPort, targetHost, targetPort] = process.argv.slice(2);
if (!targetPort) {
  process.stderr.write('usage: node node-forward.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT\n');
  process.exit(2);
}
const server = net.createServer((client) => {
  const upstream = net.connect(Number(targetPort), targetHost);
  client.pipe(upstream).pipe(client);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
});
server.on('error', (e) => { process.stderr.write(`node-forward: ${e.message}\n`); process.exit(1); });
server.listen(Number(listenPort), listenHost, () => process.stdout.write(`listening on ${listenHost}:${listenPort}\n`));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));

// A byte-stream forwarder between a TCP port and a Unix socket. Unix sockets live in the file system,
// which network namespaces share: a pair of these carries the Temporal UI and gRPC of the lab's
// namespace to 127.0.0.1 of the root namespace without a veth into it.
//
//   tsx cli/lab/forward.ts <listen> <target>    each tcp:<host>:<port> or unix:<path>
import { rmSync } from 'node:fs';
import net from 'node:net';

type Endpoint = { path: string } | { host: string; port: number };

function endpoint(text: string | undefined): Endpoint {
  const unix = /^unix:(.+)$/.exec(text ?? '');
  if (unix?.[1]) return { path: unix[1] };
  const tcp = /^tcp:([^:]+):(\d+)$/.exec(text ?? '');
  if (tcp?.[1] && tcp[2]) return { host: tcp[1], port: Number(tcp[2]) };
  process.stderr.write('usage: forward.ts <listen> <target> (tcp:<host>:<port> or unix:<path>)\n');
  process.exit(2);
}

const listenAt = endpoint(process.argv[2]);
const target = endpoint(process.argv[3]);
if ('path' in listenAt) rmSync(listenAt.path, { force: true });

const server = net.createServer((client) => {
  const upstream = net.connect(target);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.on('error', (err) => {
  process.stderr.write(`forward: ${err.message}\n`);
  process.exit(1);
});
if ('path' in listenAt) server.listen(listenAt.path);
else server.listen(listenAt.port, listenAt.host);
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

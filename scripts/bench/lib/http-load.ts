// A small closed-loop HTTP load generator for bench-http (no `ab` or `wrk` here): N keep-alive
// connections, each sending its next request when the previous body has been read, for a fixed time.
// Runs in its own process (in the client namespace) and prints one JSON line.
//
//   tsx scripts/bench/http-load.ts --base http://10.213.0.1:8080 --path /files/big.bin
//       [--path-list <file with one path a line>] --connections 4 --seconds 10
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    path: { type: 'string' },
    'path-list': { type: 'string' },
    connections: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
  },
});
if (!values.base || (!values.path && !values['path-list'])) {
  console.error(
    'usage: http-load.ts --base <url> (--path <p> | --path-list <file>) [--connections n] [--seconds s]',
  );
  process.exit(2);
}
const base = new URL(values.base);
const paths = values['path-list']
  ? (await readFile(values['path-list'], 'utf8')).split('\n').filter(Boolean)
  : [values.path ?? '/'];
const connections = Number(values.connections);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

let requests = 0;
let bytes = 0;
let errors = 0;
const latencies: number[] = [];
let firstError = '';

function once(p: string): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.get({ host: base.hostname, port: base.port, path: p, agent }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => {
        if (res.statusCode === 200) {
          requests++;
          bytes += n;
          latencies.push(performance.now() - started);
        } else {
          errors++;
          firstError ||= `HTTP ${res.statusCode} for ${p}`;
        }
        resolve();
      });
      res.on('error', () => {
        errors++;
        resolve();
      });
    });
    req.on('error', (err) => {
      errors++;
      firstError ||= err.message;
      resolve();
    });
  });
}

const seconds = Number(values.seconds);
const started = performance.now();
const deadline = started + seconds * 1000;
let next = 0;
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (performance.now() < deadline) {
      const p = paths[next++ % paths.length] ?? '/';
      await once(p);
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
agent.destroy();
console.log(
  JSON.stringify({
    requests,
    bytes,
    errors,
    firstError,
    seconds: elapsed,
    p50ms: pct(0.5),
    p99ms: pct(0.99),
  }),
);

// A real Prometheus (Debian's /usr/bin/prometheus) per test: a loopback port, its own temporary TSDB,
// scraping every second a tiny exporter whose gauges the test sets. Not the systemd service.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './etcd';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

export interface TestPrometheus {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Sets a gauge the exporter serves (`name{labels} value`); Prometheus sees it at its next scrape. */
  set(series: string, value: number): void;
  /** Waits until Prometheus' instant query returns `value` for the series. */
  seen(series: string, value: number): Promise<void>;
  /** SIGKILL of Prometheus: its port refuses connections from then on. */
  kill(): Promise<void>;
}

/** An exporter in the text format: each series as set, one per line. */
async function startExporter(gauges: Map<string, number>): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    const lines = [...gauges].map(([series, v]) => `${series} ${v}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('exporter: no port');
  return { server, port: address.port };
}

export async function startPrometheus(t: Pick<TestContext, 'after'>): Promise<TestPrometheus> {
  const gauges = new Map<string, number>();
  const exporter = await startExporter(gauges);
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-prometheus-'));
  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: test-exporter',
      `    static_configs: [{ targets: ["127.0.0.1:${exporter.port}"] }]`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr.on('data', (d: Buffer) => void (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.after(async () => {
    await kill();
    await new Promise<void>((resolve) => exporter.server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  const query = async (q: string) => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`, {
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
    return body.data?.result ?? [];
  };
  const seen = async (series: string, value: number) => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${log}`);
      const found = await query(series).catch(() => []);
      if (found.length > 0 && found.every((s) => Number(s.value[1]) === value)) return;
      await sleep(200);
    }
    throw new Error(`prometheus at ${url} never saw ${series} = ${value}:\n${log}`);
  };
  gauges.set('vaquero_test_up', 1);
  await seen('vaquero_test_up', 1);
  return { url, set: (series, value) => void gauges.set(series, value), seen, kill };
}

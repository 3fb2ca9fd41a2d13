// Real `vaquero server` processes for the rollout benchmark: the same namespace, the same
// `vaquero-server` queue and one model store, so Temporal hands their workers the work between them.
// Each is read from its own /metrics (vaquero_activities_total) and /proc (CPU).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMsOf } from './cpu';

const bin = fileURLToPath(new URL('../../../bin/vaquero.mjs', import.meta.url));
const TOKEN_ENV = 'VAQUERO_BENCH_API_TOKEN';

export interface ServerProcess {
  name: string;
  pid: number;
  url: string;
  /** Its worker's identity in Temporal histories (the SDK's default, `pid@hostname`). */
  identityPrefix: string;
  cpuMs(): number;
  /** vaquero_activities_total summed by outcome. */
  activities(): Promise<{ completed: number; failed: number }>;
  stop(): Promise<void>;
}

async function startOne(dir: string, name: string, address: string, namespace: string, store: string) {
  await mkdir(dir, { recursive: true });
  const config = path.join(dir, `${name}.yaml`);
  await writeFile(
    config,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `temporal: { address: '${address}', namespace: ${namespace} }`,
      `store: { dir: ${store} }`,
      `api: { tokens: [{ name: bench, token: { env: ${TOKEN_ENV} } }] }`,
      '',
    ].join('\n'),
  );
  // e.g. VAQUERO_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the servers.
  const nodeArgs = (process.env.VAQUERO_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, bin, 'server', '--config', config], {
    env: { ...process.env, [TOKEN_ENV]: 'vaq_bench_token_0123456789' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The last lines in memory (for the start), everything in <dir>/<name>.log: a server that exits
  // mid-run says why there, and the benchmark says where to look.
  let out = '';
  const log = createWriteStream(path.join(dir, `${name}.log`), { flags: 'a' });
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-64 * 1024);
    log.write(d);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let stopping = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      if (!stopping)
        console.error(
          `vaquero server ${name} (pid ${child.pid}) exited mid-run: code ${code}, signal ${signal}; ` +
            `its output: ${path.join(dir, `${name}.log`)}`,
        );
      log.end();
      resolve();
    }),
  );
  const markStopping = () => void (stopping = true);
  let url: string | undefined;
  for (let i = 0; i < 1800 && !url && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    url = /"url":"(http:[^"]+)"/.exec(out)?.[1];
  }
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`vaquero server ${name} did not start:\n${out.slice(-4000)}`);
  }
  return { child, url, exited, markStopping };
}

function processOf(
  name: string,
  child: ChildProcess,
  url: string,
  exited: Promise<void>,
  markStopping: () => void,
): ServerProcess {
  const pid = child.pid ?? 0;
  return {
    name,
    pid,
    url,
    identityPrefix: `${pid}@`,
    cpuMs: () => cpuMsOf(pid),
    async activities() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const sum = { completed: 0, failed: 0 };
      for (const m of text.matchAll(/^vaquero_activities_total\{[^}]*outcome="(\w+)"\} (\d+)$/gm)) {
        const outcome = m[1] === 'completed' ? 'completed' : 'failed';
        sum[outcome] += Number(m[2]);
      }
      return sum;
    },
    async stop() {
      markStopping();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Starts `count` servers in `dir` sharing `dir/store`; all of them listening, or none left running. */
export async function startServerProcesses(
  dir: string,
  count: number,
  temporal: { address: string; namespace: string },
): Promise<ServerProcess[]> {
  const store = path.join(dir, 'store');
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startOne(dir, `server-${i + 1}`, temporal.address, temporal.namespace, store),
    ),
  );
  const servers = started.flatMap((s, i) =>
    s.status === 'fulfilled'
      ? [processOf(`server-${i + 1}`, s.value.child, s.value.url, s.value.exited, s.value.markStopping)]
      : [],
  );
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}

// The protocol benchmarks run end to end in --quick mode: each completes and prints a figure for our
// server and for every peer. Nothing here looks at the figures themselves: timing is the scripts' job,
// run by hand (docs/benchmarks.md), never a test's.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { netnsProblem } from '../../cli/lab/netns';
import { repoRoot } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

interface Result {
  servers: string[];
  figures: { name: string; values: Record<string, number | null> }[];
}

function runBench(script: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts/bench', script), '--quick'],
      { cwd: repoRoot, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

async function usable(t: TestContext, tools: string[]): Promise<boolean> {
  const missing = (await netnsProblem()) ?? tools.find((p) => !existsSync(p));
  if (!missing) return true;
  const why = missing.startsWith('/') ? `${missing} not found (scripts/install-deps.sh)` : missing;
  if (IN_CI) assert.fail(why);
  t.skip(why);
  return false;
}

async function smoke(script: string, peers: string[]): Promise<void> {
  const { code, out, err } = await runBench(script);
  assert.equal(code, 0, `${script} --quick failed:\n${out}\n${err}`);
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in:\n${out}`);
  const result = JSON.parse(line.slice('RESULT '.length)) as Result;
  assert.deepEqual(result.servers, ['vaquero', ...peers]);
  assert.ok(result.figures.length > 0);
  for (const figure of result.figures) {
    for (const server of result.servers) {
      const value = figure.values[server];
      assert.ok(
        typeof value === 'number' && Number.isFinite(value),
        `${figure.name}: no number for ${server}\n${out}`,
      );
    }
  }
  // The table a person reads has the same rows.
  for (const figure of result.figures) assert.ok(out.includes(`| ${figure.name}`), figure.name);
}

test('bench-dhcp --quick measures our server, dnsmasq and Kea', async (t) => {
  if (!(await usable(t, ['/usr/sbin/perfdhcp', '/usr/sbin/dnsmasq', '/usr/sbin/kea-dhcp4']))) return;
  await smoke('dhcp.ts', ['dnsmasq', 'dnsmasq-ro', 'kea', 'kea-mem']);
});

test('bench-tftp --quick measures our server (threads and one thread) and tftpd-hpa', async (t) => {
  if (!(await usable(t, ['/usr/bin/atftp', '/usr/sbin/in.tftpd']))) return;
  await smoke('tftp.ts', ['vaquero-1thread', 'tftpd-hpa']);
});

test('bench-http --quick measures our asset server and nginx with one and two workers', async (t) => {
  if (!(await usable(t, ['/usr/sbin/nginx', '/usr/bin/curl']))) return;
  await smoke('http.ts', ['nginx', 'nginx-2w']);
});

test('bench-rack --quick boots a few machines from our servers and from dnsmasq + nginx', async (t) => {
  if (!(await usable(t, ['/usr/sbin/dnsmasq', '/usr/sbin/nginx']))) return;
  await smoke('rack.ts', ['dnsmasq-ro', 'dnsmasq']);
});

test('no benchmark namespace is left behind', async () => {
  const { stdout } = await new Promise<{ stdout: string }>((resolve) =>
    execFile('ip', ['netns', 'list'], (_err, out) => resolve({ stdout: String(out) })),
  );
  const left = stdout.split('\n').filter((l) => /^h3-[0-9a-f]{6}-[sc]\b/.test(l));
  assert.deepEqual(left, []);
});

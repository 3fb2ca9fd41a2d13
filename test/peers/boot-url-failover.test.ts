// Issue 13: a host whose agent dies after handing it a script boots from the other agent of its
// subnet, all the way: the chain script's per-host script, the kernel and initrd, and the unattended
// config and checkpoint its kernel command line names. Two real agent HTTP servers on loopback; the
// scripts are run in iPXE's order (test/helpers/ipxe-like.ts), agent A's port closed (a reset).
import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { assetListener } from '../../agent/http/listener';
import { validateSot } from '../../sot/validate';
import type { Model } from '../../schemas/model';
import { own } from '../../schemas/common';
import { runIpxe } from '../helpers/ipxe-like';
import { materialize, removeSot, repoRoot } from '../helpers/sot';

const MAC = '52:54:00:10:01:01'; // st-01: on the subnet lab1-agent and lab1-agent-b both serve
const TOKEN = 'failover-token-0123456789';
let model: Model;
let dir: string;
let files: string;

/** A listening agent on a free loopback port, and a way to kill it (every connection reset). */
function listen(listener: RequestListener, port = 0) {
  return new Promise<{ port: number; close: () => void }>((resolve) => {
    const server = createServer(listener);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      });
    });
  });
}

before(async () => {
  dir = await materialize(path.join(repoRoot, 'test/fixtures/racks'));
  const result = await validateSot(dir);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  model = result.model;
  files = await mkdtemp(path.join(tmpdir(), 'vq-failover-'));
  await mkdir(path.join(files, 'ubuntu/24.04.1'), { recursive: true });
  await writeFile(path.join(files, 'ubuntu/24.04.1/vmlinuz'), 'kernel bytes');
  await writeFile(path.join(files, 'ubuntu/24.04.1/initrd'), 'initrd bytes');
});
after(async () => {
  await removeSot(dir);
  await rm(files, { recursive: true, force: true });
});

const ENTRY = {
  ...{ mac: MAC, site: 'lab1', host: 'st-01', commit: 'c1', stage: 1, workflowId: 'w' },
  ...{ armedAt: '2026-01-01T00:00:00Z', token: TOKEN },
};

/**
 * Agents A and B of lab1 listening on loopback, each with the asset URL of its port in `site` (a
 * model of the test's own: rendered stages are cached per model object), the host armed on each as
 * `armed` says, boot events pushed as "A kind" / "B kind"; and A's chain script as iPXE expands it.
 */
async function twoAgents(t: TestContext, site: Model, armed: { a: boolean; b: boolean }) {
  const events: string[] = [];
  const app = (agent: string, on: boolean) =>
    assetListener({
      models: { forCommit: () => Promise.resolve(site), current: () => site },
      ...{ site: 'lab1', agent, filesDir: files, log: () => undefined },
      netboot: {
        lookup: (m) => Promise.resolve(on && m === MAC ? ENTRY : undefined),
        list: () => Promise.resolve(on ? [ENTRY] : []),
      },
      events: { emit: (e) => void events.push(`${agent === 'lab1-agent' ? 'A' : 'B'} ${e.kind}`) },
    });
  const a = await listen(app('lab1-agent', armed.a));
  const b = await listen(app('lab1-agent-b', armed.b));
  t.after(() => b.close());
  const urlA = `http://127.0.0.1:${a.port}`;
  const urlB = `http://127.0.0.1:${b.port}`;
  const agents = own(site.sites, 'lab1')?.site.agents ?? [];
  for (const [name, url] of [
    ['lab1-agent', urlA],
    ['lab1-agent-b', urlB],
  ] as const) {
    const agent = agents.find((x) => x.name === name);
    assert.ok(agent, name);
    agent.asset_url = url;
  }
  const chain = (await (await fetch(`${urlA}/boot.ipxe`)).text()).replaceAll(
    '${mac:hexhyp}',
    '52-54-00-10-01-01',
  );
  return { a, urlA, urlB, events, chain };
}

test('agent A dies after handing out its scripts: chain, kernel, initrd, config and checkpoint go to B', async (t) => {
  // Two agents, their asset URLs the loopback ports they listen on; one arming, the site's.
  // The host has both of A's scripts (iPXE's ${mac:hexhyp} expanded as iPXE would); then A dies.
  const { a, urlA, urlB, events, chain } = await twoAgents(t, model, { a: true, b: true });
  const script = await (await fetch(`${urlA}/ipxe/52-54-00-10-01-01`)).text();
  a.close();
  events.length = 0;

  for (const [what, text] of [
    ['A chain script', chain],
    ["A's per-host script", script],
  ] as const) {
    const run = await runIpxe(text);
    assert.ok(run.booted, `${what}: booted\n${text}\n${JSON.stringify(run.gets)}`);
    assert.ok(run.gets[0]?.url.startsWith(urlA), `${what}: A first: ${run.gets[0]?.url}`);
    assert.equal(run.gets[0]?.outcome, 'ECONNREFUSED');
    assert.ok(run.kernel?.url.startsWith(`${urlB}/files/`), `${what}: kernel from B: ${run.kernel?.url}`);
    assert.ok(
      run.initrds.every((u) => u.startsWith(`${urlB}/files/`)),
      `${what}: ${run.initrds.join()}`,
    );
    // The OS: its config from the URL on the kernel command line, then the checkpoint the config names.
    const seed = /ds=nocloud-net;s=(\S+)/.exec(run.kernel?.args ?? '')?.[1] ?? '';
    assert.ok(seed.startsWith(`${urlB}/unattended/`), `${what}: the config is B's, not dead A's: ${seed}`);
    const userData = await fetch(`${seed}user-data`);
    assert.equal(userData.status, 200);
    const checkpoint = /curl -fsS -X POST (\S+)/.exec(await userData.text())?.[1] ?? '';
    assert.ok(checkpoint.startsWith(`${urlB}/checkpoint/`), checkpoint);
    assert.equal((await fetch(checkpoint, { method: 'POST' })).status, 204);
  }
  assert.deepEqual(events, [
    ...['B ipxe', 'B kernel', 'B initrd', 'B unattended', 'B checkpoint'],
    ...['B kernel', 'B initrd', 'B unattended', 'B checkpoint'],
  ]);
});

test('a UEFI host its agent has disarmed boots from disk: no other agent is asked, even one still armed', async (t) => {
  // A has dropped the arming; B (partitioned, serving its cache) still holds it.
  const { a, urlA, urlB, chain } = await twoAgents(t, structuredClone(model), { a: false, b: true });
  for (const platform of ['efi', 'pcbios'] as const) {
    const run = await runIpxe(chain, 5_000, platform);
    const why = `${platform}: ${JSON.stringify(run.gets)}\n${chain}`;
    assert.equal(run.booted, false, why);
    assert.deepEqual(
      run.gets.map((g) => [g.url, g.outcome]),
      [[`${urlA}/ipxe/52-54-00-10-01-01`, 200]],
      why,
    );
    // Under UEFI a non-zero status (the firmware goes on to the disk); on BIOS either is fine.
    if (platform === 'efi') assert.equal(run.status, 1, why);
  }
  // A dead: the list goes on to B, which boots the host (its arming is the site's, as far as it knows).
  a.close();
  const run = await runIpxe(chain, 5_000, 'efi');
  assert.equal(run.gets[0]?.outcome, 'ECONNREFUSED');
  assert.ok(run.booted, JSON.stringify(run.gets));
  assert.ok(run.kernel?.url.startsWith(`${urlB}/files/`), run.kernel?.url);
});

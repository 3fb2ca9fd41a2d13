// The agent's HTTP boot server as it listens (agent/http/listener.ts: the boot routes answered straight
// from node:http, the rest by the Hono app), fetched over a real socket. The per-host iPXE script is
// rendered once per arming and cached: every request must still see the netboot table as it is now,
// whether it moves through the agent's own arm/disarm activities or the site-wide watch's `replace`.
// And the direct routes must answer exactly as the app's own routes do.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAssetApp } from '../../agent/http/app';
import type { AssetAppDeps } from '../../agent/http/deps';
import { assetListener } from '../../agent/http/listener';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';
import type { Model } from '../../schemas/model';
import type { BootEvent } from '../../schemas/rollout';
import { ipxeScript, renderStage } from '../../sot/boot-chain';
import { validateSot } from '../../sot/validate';
import { armingActivities } from '../helpers/arming-activities';

const SOT = fileURLToPath(new URL('../../examples/sot', import.meta.url));
const WK01 = '52:54:00:20:02:01';
const ST01 = '52:54:00:20:03:01';
const KERNEL = 'kernel-bytes-'.repeat(1000);

const events: BootEvent[] = [];
const models = new Map<string, Model>();
let dir = '';
let base = '';
let server: Server;
let table: NetbootTable;
let deps: AssetAppDeps;
let activities: ReturnType<typeof armingActivities>;

/** The example SoT with flatcar's kernel and initrd served by the agent; `kernel` names the kernel file. */
async function exampleModel(kernel: string): Promise<Model> {
  const result = await validateSot(SOT);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  const copy = structuredClone(result.model);
  const os = copy.os['flatcar-stable'];
  assert.ok(os);
  copy.os['flatcar-stable'] = { ...os, kernel, initrds: ['flatcar/initrd.cpio.gz'] };
  return copy;
}

before(async () => {
  models.set('c1', await exampleModel('flatcar/vmlinuz'));
  models.set('c2', await exampleModel('flatcar/vmlinuz-2'));
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-script-cache-'));
  const files = path.join(dir, 'files');
  await mkdir(path.join(files, 'flatcar'), { recursive: true });
  await writeFile(path.join(files, 'flatcar/vmlinuz'), KERNEL);
  await writeFile(path.join(files, 'flatcar/initrd.cpio.gz'), 'initrd');
  table = new NetbootTable(path.join(dir, 'netboot.json'));
  activities = armingActivities('fra1', table, dir);
  const c1 = models.get('c1');
  assert.ok(c1);
  deps = {
    models: { forCommit: (commit) => Promise.resolve(models.get(commit)), current: () => c1 },
    site: 'fra1',
    netboot: table,
    events: { emit: (e) => events.push(e) },
    filesDir: files,
    log: () => undefined,
  };
  server = createServer(assetListener(deps));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  base = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

async function script(mac: string): Promise<string> {
  const res = await fetch(`${base}/ipxe/${mac.replaceAll(':', '-')}`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The script as rendered from scratch for the table's current entry of `mac` (no cache involved). */
async function fresh(mac: string): Promise<string> {
  const entry = await table.lookup(mac);
  assert.ok(entry);
  const model = models.get(entry.commit);
  assert.ok(model);
  const host = model.sites.fra1?.hosts.find((h) => h.name === entry.host);
  assert.ok(host);
  return ipxeScript(renderStage(model, 'fra1', host, entry.stage - 1, entry.token));
}

const arm = (mac: string, host: string, commit: string, stage: number) =>
  activities.armNetboot({ mac, host, commit, stage, workflowId: `reprovision-fra1-${host}` });

test('arm, disarm, re-arm: each script request sees the arming of the moment', async () => {
  await arm(WK01, 'wk-01', 'c1', 1);
  const first = await script(WK01);
  assert.equal(first, await fresh(WK01));
  const token1 = (await table.lookup(WK01))?.token;
  assert.ok(token1 && first.includes(token1));
  assert.equal(await script(WK01), first, 'the cached script is the same text');

  assert.equal(await activities.disarmNetboot({ mac: WK01, workflowId: 'reprovision-fra1-wk-01' }), true);
  const local = await script(WK01);
  assert.match(local, /not armed for network boot; booting from local disk/);
  assert.doesNotMatch(local, /^kernel /m);

  await arm(WK01, 'wk-01', 'c1', 1);
  const again = await script(WK01);
  const token2 = (await table.lookup(WK01))?.token;
  assert.ok(token2 && token2 !== token1);
  assert.equal(again, await fresh(WK01));
  assert.ok(again.includes(token2) && !again.includes(token1), 'the new arming token, not the old');

  // Re-armed with another commit whose model names another kernel: that kernel at once.
  await arm(WK01, 'wk-01', 'c2', 1);
  const other = await script(WK01);
  assert.equal(other, await fresh(WK01));
  assert.match(other, /^kernel http:\/\/\S+\/files\/flatcar\/vmlinuz-2\?token=/m);

  // Another stage of a two-stage host: its own script, then the first stage's again.
  await arm(ST01, 'st-01', 'c1', 2);
  const second = await script(ST01);
  assert.match(second, /stage 2\/2/);
  assert.equal(second, await fresh(ST01));
  await arm(ST01, 'st-01', 'c1', 1);
  const stage1 = await script(ST01);
  assert.match(stage1, /stage 1\/2/);
  assert.equal(stage1, await fresh(ST01));
});

test("the site-wide watch's replace moves the script as an arm does", async () => {
  const entry = (token: string, stage = 1): ArmEntry => ({
    mac: WK01,
    site: 'fra1',
    host: 'wk-01',
    commit: 'c1',
    stage,
    workflowId: 'reprovision-fra1-wk-01',
    armedAt: '2026-01-01T00:00:00Z',
    token,
  });
  const tokenA = 'site-wide-token-A-0123456789';
  const tokenB = 'site-wide-token-B-0123456789';
  await table.replace([entry(tokenA)], 100);
  assert.ok((await script(WK01)).includes(tokenA));
  await table.replace([], 101);
  assert.match(await script(WK01), /not armed for network boot; booting from local disk/);
  await table.replace([entry(tokenB)], 102);
  const b = await script(WK01);
  assert.ok(b.includes(tokenB) && !b.includes(tokenA));
  assert.equal(b, await fresh(WK01));
});

test('the direct routes answer as the app does: status, body, headers and boot events', async () => {
  await arm(WK01, 'wk-01', 'c1', 1);
  const token = (await table.lookup(WK01))?.token ?? '';
  const app = createAssetApp(deps);
  const file = `/files/flatcar/vmlinuz?token=${token}`;
  const etag = (await app.request(file)).headers.get('etag') ?? '';
  const cases: [string, RequestInit?][] = [
    ['/ipxe/52-54-00-20-02-01'],
    ['/ipxe/52:54:00:20:02:01'],
    ['/ipxe/52-54-00-99-99-99'],
    ['/boot.ipxe'],
    [file],
    [file, { method: 'HEAD' }],
    [file, { headers: { Range: 'bytes=13-25' } }],
    [file, { headers: { Range: 'bytes=-5' } }],
    [file, { headers: { Range: 'bytes=0-1,5-6' } }],
    [file, { headers: { Range: `bytes=${KERNEL.length}-` } }],
    [file, { headers: { 'If-None-Match': etag } }],
    [file, { headers: { 'If-Range': '"other"', Range: 'bytes=0-3' } }],
    ['/files/flatcar/vmlinuz?token=not-the-token-of-anyone'],
    ['/files/flatcar/initrd.cpio.gz'],
    ['/files/flatcar'],
    ['/files/missing'],
  ];
  const headers = ['content-type', 'content-length', 'content-range', 'etag', 'accept-ranges'];
  for (const [url, init] of cases) {
    events.length = 0;
    const viaApp = await app.request(url, init);
    const appBody = await viaApp.text();
    const withoutTime = ({ at: _at, ...e }: BootEvent) => e;
    const appEvents = events.splice(0).map(withoutTime);
    const direct = await fetch(`${base}${url}`, init);
    const directBody = await direct.text();
    const directEvents = events.splice(0).map(withoutTime);
    const what = `${init?.method ?? 'GET'} ${url} ${JSON.stringify(init?.headers ?? {})}`;
    assert.equal(direct.status, viaApp.status, what);
    assert.equal(directBody, appBody, what);
    assert.deepEqual(directEvents, appEvents, what);
    for (const h of headers) {
      // A web Response made from a string has no length header; node:http sends one.
      if (h === 'content-length' && !viaApp.headers.has(h)) continue;
      assert.equal(direct.headers.get(h), viaApp.headers.get(h), `${what}: ${h}`);
    }
    assert.ok(direct.headers.get('x-request-id'), what);
  }

  // A model the agent lacks is the same logged 503 through both.
  await table.replace([{ ...((await table.lookup(WK01)) as ArmEntry), commit: 'gone' }], 200);
  const viaApp = await app.request('/ipxe/52-54-00-20-02-01');
  const direct = await fetch(`${base}/ipxe/52-54-00-20-02-01`);
  assert.equal(direct.status, 503);
  assert.equal(await direct.text(), await viaApp.text());
});

// Issue 18 item 4: someone else on the boot network cannot complete an armed host's boot. The agent's
// HTTP boot server on a real listener; curl sends from the host's lease address (127.0.0.5) and from
// another machine's (127.0.0.2), in every order. Only the host's own sequence, with the token its
// script hands out, is a boot event; every refusal is a bare 403, logged with its reason and counted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AssetLog } from '../../agent/http/app';
import { assetListener } from '../../agent/http/listener';
import { newRefusalCounts } from '../../agent/http/boot-guard';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { Model } from '../../schemas/model';
import type { BootEvent } from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import { armingActivities } from '../helpers/arming-activities';

const run = promisify(execFile);
const SOT = fileURLToPath(new URL('../../examples/sot', import.meta.url));
const WK01 = '52:54:00:20:02:01';
const SLUG = '52-54-00-20-02-01';
const LEASE = '127.0.0.5';
const OTHER = '127.0.0.2';
const IMAGE_SUM = `sha256:${'a1'.repeat(32)}`;

const events: BootEvent[] = [];
const logs: AssetLog[] = [];
const refusals = newRefusalCounts();
let dir = '';
let base = '';
let server: Server;
let table: NetbootTable;

/** The example SoT, with flatcar's kernel served by the agent (so its URL carries the token). */
async function exampleModel(): Promise<Model> {
  const result = await validateSot(SOT);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  const copy = structuredClone(result.model);
  const os = copy.os['flatcar-stable'];
  assert.ok(os);
  copy.os['flatcar-stable'] = { ...os, kernel: 'flatcar/vmlinuz', initrds: ['flatcar/initrd.cpio.gz'] };
  const profile = copy.profiles['flatcar-worker'];
  assert.ok(profile);
  copy.profiles['flatcar-worker'] = {
    ...profile,
    image: { url: '/files/images/os.img.zst', format: 'raw+zstd', checksum: IMAGE_SUM, disk: '/dev/vda' },
  };
  return copy;
}

/** Arms wk-01 as the reprovision workflow does: through the agent's own armNetboot activity. */
async function arm(): Promise<void> {
  const activities = armingActivities('fra1', table, dir);
  await activities.armNetboot({
    mac: WK01,
    host: 'wk-01',
    commit: 'c1',
    stage: 1,
    workflowId: 'reprovision-fra1-wk-01',
  });
}

before(async () => {
  const model = await exampleModel();
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-boot-token-'));
  const files = path.join(dir, 'files');
  await mkdir(path.join(files, 'flatcar'), { recursive: true });
  await writeFile(path.join(files, 'flatcar/vmlinuz'), 'kernel');
  await writeFile(path.join(files, 'flatcar/initrd.cpio.gz'), 'initrd');
  table = new NetbootTable(path.join(dir, 'netboot.json'));
  await arm();
  const listener = assetListener({
    models: { forCommit: () => Promise.resolve(model), current: () => model },
    site: 'fra1',
    netboot: table,
    events: { emit: (e) => events.push(e) },
    filesDir: files,
    log: (entry) => logs.push(entry),
    leaseAddress: (mac) => (mac === WK01 ? LEASE : undefined),
    refusals,
  });
  server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' ? address?.port : 0}`;
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** curl from a source address; the status and body. */
async function from(address: string, url: string, post = false) {
  const args = ['-sS', '--max-time', '10', '--interface', address, '-w', '\n%{http_code}'];
  const { stdout } = await run('curl', [...args, ...(post ? ['-X', 'POST'] : []), url]);
  const split = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(split + 1)), body: stdout.slice(0, split) };
}

/** The URLs the host's script hands it (kernel, its unattended config, and through it the checkpoint). */
function urlsOf(script: string) {
  const kernel = /^kernel (\S+)/m.exec(script)?.[1];
  const unattended = /ignition\.config\.url=(\S+)/.exec(script)?.[1];
  assert.ok(kernel && unattended, script);
  const local = (url: string) => url.replace(/^http:\/\/[^/]+/, base);
  return { kernel: local(kernel), unattended: local(unattended) };
}

const kinds = () => events.splice(0).map((e) => `${e.kind} ${e.mac}`);

test('from another address, in every order, nothing of the boot is an event', async () => {
  const guesses = [
    `${base}/checkpoint/${SLUG}/1`,
    `${base}/checkpoint/${SLUG}/1/${'A'.repeat(32)}`,
    `${base}/checkpoint/${SLUG}/1/BOOT-TOKEN`,
  ];
  const steps = [
    ...guesses.map((url) => () => from(OTHER, url, true)),
    () => from(OTHER, `${base}/ipxe/${SLUG}`),
    () => from(OTHER, `${base}/unattended/${SLUG}/1`),
    () => from(OTHER, `${base}/files/flatcar/vmlinuz?mac=${SLUG}`),
    () => from(OTHER, `${base}/files/flatcar/vmlinuz?token=${'B'.repeat(32)}`),
  ];
  const statuses: number[] = [];
  for (const order of [steps, [...steps].reverse()]) {
    for (const step of order) statuses.push((await step()).status);
  }
  // Boot files are no secret (200); everything else of an armed host is refused.
  assert.deepEqual(statuses.filter((s) => s !== 403).length, 4, statuses.join(' '));
  assert.deepEqual(kinds(), []);
  const token = (await table.lookup(WK01))?.token;
  assert.ok(token && token.length >= 32, 'armNetboot made a token of 192 bits');
  // Even the right token does not complete it from an address that is not the host's lease.
  const stolen = await from(OTHER, `${base}/checkpoint/${SLUG}/1/${token}`, true);
  assert.equal(stolen.status, 403);
  assert.equal(stolen.body.trim(), 'forbidden');
  assert.deepEqual(kinds(), []);
  assert.deepEqual(refusals, { 'no-token': 4, 'bad-token': 6, 'other-stage': 0, 'other-address': 3 });
  const warned = logs.filter((l) => l.level === 'warn' && /refused/.test(l.msg));
  assert.equal(warned.length, 13);
  assert.ok(
    warned.every((l) => l.mac && l.reason && l.from === OTHER),
    JSON.stringify(warned[0]),
  );
  assert.ok(!JSON.stringify(logs).includes(token), 'the token is in no log line');
});

test("from the host's lease, the script hands out the token and the boot completes in order", async () => {
  events.length = 0;
  // Its own address does not make a token-less checkpoint count either.
  assert.equal((await from(LEASE, `${base}/checkpoint/${SLUG}/1`, true)).status, 403);
  const script = await from(LEASE, `${base}/ipxe/${SLUG}`);
  assert.equal(script.status, 200);
  const urls = urlsOf(script.body);
  assert.equal((await from(LEASE, urls.kernel)).status, 200);
  const config = await from(LEASE, urls.unattended);
  assert.equal(config.status, 200);
  const checkpoint = /curl -fsS -X POST (\S+?)\\n/.exec(config.body)?.[1];
  assert.ok(checkpoint, config.body);
  assert.equal((await from(LEASE, checkpoint.replace(/^http:\/\/[^/]+/, base), true)).status, 204);
  assert.deepEqual(kinds(), [`ipxe ${WK01}`, `kernel ${WK01}`, `unattended ${WK01}`, `checkpoint ${WK01}`]);
});

test("a new arming's token replaces the old one: the previous boot's URLs complete nothing", async () => {
  const old = urlsOf((await from(LEASE, `${base}/ipxe/${SLUG}`)).body);
  await arm();
  events.length = 0;
  assert.equal((await from(LEASE, old.unattended)).status, 403);
  assert.equal((await from(LEASE, old.kernel)).status, 200);
  assert.deepEqual(kinds(), []);
  const fresh = urlsOf((await from(LEASE, `${base}/ipxe/${SLUG}`)).body);
  assert.notEqual(fresh.unattended, old.unattended);
  assert.equal((await from(LEASE, fresh.unattended)).status, 200);
});

test("the deploy ramdisk's reports: progress, a mismatch and the verified image, only from the host", async () => {
  const script = await from(LEASE, `${base}/ipxe/${SLUG}`);
  const report = /vaquero\.image\.report=(\S+)/.exec(script.body)?.[1]?.split(',')[0];
  assert.ok(report, script.body);
  const url = report.replace(/^http:\/\/[^/]+/, base);
  events.length = 0;
  assert.equal((await from(OTHER, `${url}?written=1048576`, true)).status, 403);
  assert.equal((await from(LEASE, `${url}?written=12x`, true)).status, 400);
  assert.equal((await from(LEASE, `${url}?got=md5:00`, true)).status, 400);
  assert.equal((await from(LEASE, `${url}?written=1048576`, true)).status, 200);
  const wrong = `sha256:${'b2'.repeat(32)}`;
  const mismatch = await from(LEASE, `${url}?written=2097152&got=${wrong}`, true);
  assert.equal(mismatch.status, 409);
  assert.equal(
    mismatch.body.trim(),
    `checksum mismatch: expected ${IMAGE_SUM}, got ${wrong} (2097152 bytes)`,
  );
  const ok = await from(LEASE, `${url}?written=2097152&got=${IMAGE_SUM}`, true);
  assert.equal(ok.status, 200);
  assert.equal((await from(LEASE, `${url}?error=no%20disk%20/dev/vda%0a`, true)).status, 200);
  assert.deepEqual(
    events.splice(0).map((e) => `${e.kind} ${e.detail}`),
    [
      'image written 1048576 bytes',
      `image checksum mismatch: expected ${IMAGE_SUM}, got ${wrong} (2097152 bytes)`,
      `image verified ${IMAGE_SUM} (2097152 bytes)`,
      'image failed: no disk /dev/vda?',
    ],
  );
});

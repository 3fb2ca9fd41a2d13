// The agent's HTTP boot server: through app.request() and through a real listener fetched with curl.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ArmEntry } from '../../schemas/agent';
import { validateSot } from '../../sot/validate';
import { createAssetApp, type AssetLog } from '../../agent/http/app';
import type { AssetAppDeps } from '../../agent/http/deps';
import { assetListener } from '../../agent/http/listener';
import type { Model } from '../../schemas/model';
import type { BootEvent } from '../../schemas/rollout';

const run = promisify(execFile);
const SOT = fileURLToPath(new URL('../../examples/sot', import.meta.url));
const WK01 = '52:54:00:20:02:01';
/** The boot token of wk-01's arming (the agent makes a random one; any string of 22+ will do here). */
const TOKEN = 'wk-01-boot-token-of-this-test';
const KERNEL = 'kernel-bytes-'.repeat(100);
const INITRD = 'initrd-bytes-'.repeat(50);

const events: BootEvent[] = [];
const logs: AssetLog[] = [];
const armed = new Map<string, ArmEntry>();
let dir = '';
let model: Model;
let app: ReturnType<typeof createAssetApp>;
let deps: AssetAppDeps;

/** The example SoT, with flatcar's kernel and initrd served by the agent instead of Flatcar's CDN. */
async function exampleModel(): Promise<Model> {
  const result = await validateSot(SOT);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  const copy = structuredClone(result.model);
  const os = copy.os['flatcar-stable'];
  assert.ok(os);
  copy.os['flatcar-stable'] = { ...os, kernel: 'flatcar/vmlinuz', initrds: ['flatcar/initrd.cpio.gz'] };
  return copy;
}

before(async () => {
  model = await exampleModel();
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-http-'));
  const files = path.join(dir, 'files');
  await mkdir(path.join(files, 'flatcar'), { recursive: true });
  await writeFile(path.join(files, 'flatcar/vmlinuz'), KERNEL);
  await writeFile(path.join(files, 'flatcar/initrd.cpio.gz'), INITRD);
  await writeFile(path.join(dir, 'secret.txt'), 'outside the root');
  await symlink(path.join(dir, 'secret.txt'), path.join(files, 'escape'));
  armed.set(WK01, {
    mac: WK01,
    site: 'fra1',
    host: 'wk-01',
    commit: 'c1',
    stage: 1,
    workflowId: 'reprovision-fra1-wk-01',
    armedAt: '2026-01-01T00:00:00Z',
    token: TOKEN,
  });
  deps = {
    models: {
      forCommit: (commit) => Promise.resolve(commit === 'c1' ? model : undefined),
      current: () => model,
    },
    site: 'fra1',
    netboot: {
      lookup: (mac) => Promise.resolve(armed.get(mac)),
      list: () => Promise.resolve([...armed.values()]),
    },
    events: { emit: (e) => events.push(e) },
    filesDir: files,
    log: (entry) => logs.push(entry),
  };
  app = createAssetApp(deps);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(mac: string): ArmEntry {
  const found = armed.get(mac);
  assert.ok(found);
  return found;
}

function take(): Omit<BootEvent, 'at'>[] {
  return events.splice(0).map(({ at, ...e }) => {
    assert.ok(!Number.isNaN(Date.parse(at)));
    return e;
  });
}

test('the chain script hands iPXE its own MAC in hexhyp form', async () => {
  const res = await app.request('/boot.ipxe');
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^#!ipxe\n/);
  assert.ok(
    text.includes(
      'chain --autofree http://10.20.0.5:8080/ipxe/${mac:hexhyp} || isset ${vaquero-local} || echo',
    ),
    text,
  );
  // The way to the disk: under UEFI a non-zero status, or the firmware stops at its boot menu.
  assert.ok(text.endsWith('\niseq ${platform} efi || exit\nexit 1\n'), text);
  assert.ok(res.headers.get('x-request-id'));
});

test('an armed host gets its stage script, an unarmed or unknown one boots from disk', async () => {
  take();
  const res = await app.request('/ipxe/52-54-00-20-02-01');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const script = await res.text();
  assert.ok(
    script.includes(
      `kernel http://10.20.0.5:8080/files/flatcar/vmlinuz?token=${TOKEN} initrd=initrd.cpio.gz`,
    ),
    script,
  );
  assert.ok(
    script.includes(`ignition.config.url=http://10.20.0.5:8080/unattended/52-54-00-20-02-01/1/${TOKEN}`),
  );
  assert.ok(
    script.includes(
      `initrd --name initrd.cpio.gz http://10.20.0.5:8080/files/flatcar/initrd.cpio.gz?token=${TOKEN}`,
    ),
  );
  assert.deepEqual(take(), [{ kind: 'ipxe', mac: WK01, stage: 1 }]);

  for (const mac of ['52-54-00-20-02-02', '52-54-00-99-99-99', 'not-a-mac']) {
    const local = await app.request(`/ipxe/${mac}`);
    assert.equal(local.status, 200);
    const text = await local.text();
    assert.match(text, /^#!ipxe\n/);
    // BIOS leaves with 0, UEFI with 1 (the firmware's boot manager then tries the disk).
    assert.match(text, /^iseq \$\{platform\} efi \|\| exit\nexit 1$/m);
    assert.doesNotMatch(text, /^(kernel|chain)/m);
  }
  assert.deepEqual(take(), []);
});

test('the unattended config of an armed host is its rendered ignition JSON', async () => {
  take();
  const res = await app.request(`/unattended/52-54-00-20-02-01/1/${TOKEN}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  const config = JSON.parse(await res.text()) as { ignition?: { version?: string } };
  assert.equal(typeof config.ignition?.version, 'string');
  assert.deepEqual(take(), [{ kind: 'unattended', mac: WK01, stage: 1 }]);

  assert.equal((await app.request(`/unattended/52-54-00-20-02-02/1/${TOKEN}`)).status, 404);
  assert.equal((await app.request(`/unattended/52-54-00-20-02-01/2/${TOKEN}`)).status, 403);
  assert.equal((await app.request('/unattended/52-54-00-20-02-01/x')).status, 400);
  assert.deepEqual(take(), []);
});

test('a checkpoint of an armed MAC is an event; of an unknown MAC a logged 404', async () => {
  take();
  const post = await app.request(`/checkpoint/52-54-00-20-02-01/1/${TOKEN}`, { method: 'POST' });
  assert.equal(post.status, 204);
  const get = await app.request(`/checkpoint/52:54:00:20:02:01/1/${TOKEN}`);
  assert.equal(get.status, 204);
  assert.deepEqual(take(), [
    { kind: 'checkpoint', mac: WK01, stage: 1 },
    { kind: 'checkpoint', mac: WK01, stage: 1 },
  ]);
  logs.length = 0;
  const unknown = await app.request('/checkpoint/52-54-00-99-99-99/1', { method: 'POST' });
  assert.equal(unknown.status, 404);
  assert.deepEqual(take(), []);
  assert.ok(logs.some((l) => l.level === 'warn' && /unarmed MAC 52-54-00-99-99-99/.test(l.msg)));
  assert.ok(logs.every((l) => typeof l.reqId === 'string'));
});

test('the armed kernel and initrd are events; HEAD and other files are not', async () => {
  take();
  const kernel = await app.request(`/files/flatcar/vmlinuz?token=${TOKEN}`);
  assert.equal(kernel.status, 200);
  assert.equal(await kernel.text(), KERNEL);
  const initrd = await app.request(`/files/flatcar/initrd.cpio.gz?token=${TOKEN}`);
  assert.equal(await initrd.text(), INITRD);
  assert.deepEqual(take(), [
    { kind: 'kernel', mac: WK01, stage: 1, detail: '/files/flatcar/vmlinuz' },
    { kind: 'initrd', mac: WK01, stage: 1, detail: '/files/flatcar/initrd.cpio.gz' },
  ]);
  const head = await app.request(`/files/flatcar/vmlinuz?token=${TOKEN}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(KERNEL.length));
  assert.equal(await head.text(), '');
  assert.deepEqual(take(), []);
});

test('with two armed hosts on one kernel, the boot token says whose fetch it is', async () => {
  const wk02 = '52:54:00:20:02:02';
  const token2 = 'wk-02-boot-token-of-this-test';
  armed.set(wk02, { ...entry(WK01), mac: wk02, host: 'wk-02', token: token2 });
  try {
    take();
    assert.equal((await app.request('/files/flatcar/vmlinuz')).status, 200);
    assert.equal((await app.request('/files/flatcar/vmlinuz?mac=52-54-00-20-02-02')).status, 200);
    assert.deepEqual(take(), []);
    assert.equal((await app.request(`/files/flatcar/vmlinuz?token=${token2}`)).status, 200);
    assert.deepEqual(take(), [{ kind: 'kernel', mac: wk02, stage: 1, detail: '/files/flatcar/vmlinuz' }]);
    const mixed = `/files/flatcar/vmlinuz?mac=52-54-00-20-02-01&token=${token2}`;
    assert.equal((await app.request(mixed)).status, 200);
    assert.deepEqual(take(), []);
  } finally {
    armed.delete(wk02);
  }
});

test('a cloud-config stage is served as text/cloud-config, also as NoCloud user-data', async () => {
  const st01 = '52:54:00:20:03:01';
  armed.set(st01, { ...entry(WK01), mac: st01, host: 'st-01', stage: 2 });
  try {
    take();
    const res = await app.request(`/unattended/52-54-00-20-03-01/2/${TOKEN}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/cloud-config/);
    const config = await res.text();
    assert.match(config, /^#cloud-config\n/);
    const userData = await app.request(`/unattended/52-54-00-20-03-01/2/${TOKEN}/user-data`);
    assert.equal(await userData.text(), config);
    const meta = await app.request(`/unattended/52-54-00-20-03-01/2/${TOKEN}/meta-data`);
    assert.match(await meta.text(), /^local-hostname: st-01$/m);
    assert.deepEqual(
      take().map((e) => [e.kind, e.stage]),
      [
        ['unattended', 2],
        ['unattended', 2],
      ],
    );
  } finally {
    armed.delete(st01);
  }
});

test('an armed commit the agent has no model of is a logged 503, so iPXE falls back to the disk', async () => {
  armed.set(WK01, { ...entry(WK01), commit: 'gone' });
  try {
    logs.length = 0;
    const res = await app.request('/ipxe/52-54-00-20-02-01');
    assert.equal(res.status, 503);
    assert.ok(logs.some((l) => l.level === 'error' && /no model of commit gone/.test(l.msg)));
    assert.deepEqual(take(), []);
  } finally {
    armed.set(WK01, { ...entry(WK01), commit: 'c1' });
  }
});

test('paths out of the files directory are refused', async () => {
  for (const [url, status] of [
    ['/files/%2e%2e/secret.txt', 404],
    ['/files/flatcar/%2E%2E/%2e%2e/secret.txt', 404],
    ['/files/..%2fsecret.txt', 404],
    ['/files/%2fetc%2fpasswd', 404],
    ['/files/flatcar%5c..%5c..%5csecret.txt', 404],
    ['/files/%00', 404],
    ['/files/%zz', 404],
    ['/files/escape', 403],
    ['/files/flatcar', 404],
    ['/files/missing', 404],
  ] as const) {
    const res = await app.request(url);
    assert.equal(res.status, status, url);
    assert.doesNotMatch(await res.text(), /outside the root/);
  }
});

async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-i', '--max-time', '10', ...args]);
  const split = stdout.indexOf('\r\n\r\n');
  const headers = stdout.slice(0, split);
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1]), headers, body: stdout.slice(split + 4) };
}

function header(headers: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.*)\\r?$`, 'im').exec(headers)?.[1];
}

// The listener the agent runs (agent/http/listener.ts): these routes are answered by node:http directly.
test('curl against a real listener: Range, If-None-Match, HEAD, 416 and raw ..', async (t) => {
  const base = await new Promise<{ url: string; server: Server }>((resolve) => {
    const server = createServer(assetListener(deps, { app }));
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ url: `http://127.0.0.1:${typeof address === 'object' ? address?.port : 0}`, server });
    });
  });
  t.after(() => {
    base.server.closeAllConnections();
    base.server.close();
  });
  const file = `${base.url}/files/flatcar/vmlinuz?token=${TOKEN}`;
  take();

  const part = await curl(['-r', '13-25', file]);
  assert.equal(part.status, 206);
  assert.equal(part.body, KERNEL.slice(13, 26));
  assert.equal(header(part.headers, 'content-range'), `bytes 13-25/${KERNEL.length}`);
  assert.deepEqual(take(), [], 'a range not at the start is no new kernel fetch');

  const suffix = await curl(['-r', '-5', file]);
  assert.equal(suffix.status, 206);
  assert.equal(suffix.body, KERNEL.slice(-5));

  const whole = await curl([file]);
  assert.equal(whole.status, 200);
  assert.equal(whole.body, KERNEL);
  const etag = header(whole.headers, 'etag');
  assert.ok(etag);
  assert.equal(take()[0]?.kind, 'kernel');

  const cached = await curl(['-H', `If-None-Match: ${etag}`, file]);
  assert.equal(cached.status, 304);
  assert.equal(cached.body, '');
  assert.deepEqual(take(), [], 'a revalidated kernel is no new fetch');
  assert.equal((await curl(['-H', 'If-None-Match: "other"', file])).status, 200);
  take();

  const head = await curl(['-I', file]);
  assert.equal(head.status, 200);
  assert.equal(header(head.headers, 'content-length'), String(KERNEL.length));
  assert.equal(header(head.headers, 'accept-ranges'), 'bytes');

  const bad = await curl(['-r', `${KERNEL.length}-${KERNEL.length + 10}`, file]);
  assert.equal(bad.status, 416);
  assert.equal(header(bad.headers, 'content-range'), `bytes */${KERNEL.length}`);

  const many = await curl(['-r', '0-1,5-6', file]);
  assert.equal(many.status, 200);
  assert.equal(many.body, KERNEL);
  take();

  const escape = await curl(['--path-as-is', `${base.url}/files/../secret.txt`]);
  assert.equal(escape.status, 404);
  const encoded = await curl(['--path-as-is', `${base.url}/files/flatcar/%2e%2e/%2e%2e/secret.txt`]);
  assert.equal(encoded.status, 404);
  assert.equal((await curl([`${base.url}/files/escape`])).status, 403);

  const script = await curl([`${base.url}/ipxe/52-54-00-20-02-01`]);
  assert.equal(script.status, 200);
  assert.match(script.body, /^kernel http:\/\/10\.20\.0\.5:8080\/files\/flatcar\/vmlinuz\?token=/m);
  const checkpoint = await curl(['-X', 'POST', `${base.url}/checkpoint/52-54-00-20-02-01/1/${TOKEN}`]);
  assert.equal(checkpoint.status, 204);
  assert.deepEqual(
    take().map((e) => e.kind),
    ['ipxe', 'checkpoint'],
  );
});

// Issue 14 items 1 and 2 in the virtual lab (run at the end of lab-two-agents.test.ts on its lab, to
// spare CI a second one): a commit moves one machine to a group whose profile deploys the lab OS image v2 to its
// disk. The rollout writes it through the deploy ramdisk, the workflow sees it verified, the machine
// reboots from its disk on v2 (the validation job reads it), and a power cycle straight at its BMC
// (lab-03's speaks Redfish) brings it up from the disk again. Then a commit pointing at the same image with one byte
// changed (checksum unchanged) fails the canary at the image step with the mismatch, the disk's first
// MiB (its boot sector and partition table) left zeroed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { BMC_PASSWORD, BMC_USER } from '../../cli/lab/bmc';
import type { ReprovisionHostResult } from '../../schemas/rollout';
import { git, labUntil } from './lab-test';
import { LAB_CACHE } from './qemu';

const run = promisify(execFile);
const HOST = 'lab-03';
const BMC = '10.77.0.4';
const IMAGE_BYTES = 24 * 1024 * 1024;
const MiB = 1024 * 1024;

export interface LabImageContext {
  client: Client;
  sot: string;
  state: string;
  prefix: string;
}

const DEADLINE_MS = 10 * 60_000;

const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  labUntil(what, DEADLINE_MS, probe);

function profile(url: string, format: string, checksum: string): string {
  return [
    'id: lab-deploy',
    'os: lab-linux',
    `image: { url: ${url}, format: ${format}, checksum: "${checksum}", disk: "serial:${HOST}" }`,
    'validation:',
    '  - name: os-version',
    '    type: http',
    '    url: "http://{{ host.ipv4 }}/status.json"',
    '    expect_json: { path: os_version, equals: 2 }',
    '    timeout: 5m',
    '    retries: 90',
    '    retry_delay: 2s',
    '',
  ].join('\n');
}

async function commitAll(sot: string, message: string): Promise<string> {
  await git(sot, ['add', '-A']);
  await git(sot, ['commit', '-q', '-m', message]);
  return git(sot, ['rev-parse', 'HEAD']);
}

/** The host's reprovision of a commit, once closed: its result, or the failure message. */
async function hostOutcome(ctx: LabImageContext, commit: string): Promise<string> {
  const handle = ctx.client.workflow.getHandle(`host/lab/${HOST}/${commit.slice(0, 7)}`);
  await until(`${HOST}'s workflow of ${commit.slice(0, 7)}`, async () =>
    (await handle.describe()).status.name === 'RUNNING' ? undefined : true,
  );
  return handle.result().then(
    (r: ReprovisionHostResult) => (r.ok ? 'ok' : `failed: ${r.error}`),
    (e: unknown) => (e instanceof WorkflowFailedError ? String(e.cause?.message) : String(e)),
  );
}

async function sha256Of(file: string, bytes: number): Promise<string> {
  const fd = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fd.read(buf, 0, bytes, 0);
    return createHash('sha256').update(buf).digest('hex');
  } finally {
    await fd.close();
  }
}

const bootsFromDisk = async (serial: string) =>
  (
    (await readFile(serial, 'latin1')).match(
      /lab OS version 2 booted from disk \/dev\/vda \(sha256:([0-9a-f]{64})\)/g,
    ) ?? []
  ).length;

export async function labImageDeploy(t: TestContext, ctx: LabImageContext): Promise<void> {
  const started = Date.now();
  const sum = (await readFile(path.join(LAB_CACHE, 'images/lab-os-2.img.sha256'), 'utf8')).trim();
  const vm = path.join(ctx.state, 'vms', HOST);
  const serial = path.join(vm, 'serial.log');
  const hosts = path.join(ctx.sot, 'sites/lab/hosts/machines.yaml');
  await writeFile(
    path.join(ctx.sot, 'boot/lab-deploy.yaml'),
    profile('/files/images/lab-os-2.img.zst', 'raw+zstd', `sha256:${sum}`),
  );
  await writeFile(
    path.join(ctx.sot, 'workflows/lab-disk.yaml'),
    'id: lab-disk\nboots: [lab-deploy]\nboot_retries: 0\nrollout: { canary: 1, max_concurrent: 1, max_fail: 0 }\n',
  );
  const text = await readFile(hosts, 'utf8');
  await writeFile(hosts, text.replace(`name: ${HOST}\ngroup: lab\n`, `name: ${HOST}\ngroup: lab-disk\n`));
  assert.notEqual(await readFile(hosts, 'utf8'), text, `${HOST} moved to lab-disk`);
  const good = await commitAll(ctx.sot, `${HOST}: deploy lab OS 2 to its disk`);
  assert.equal(await hostOutcome(ctx, good), 'ok');
  // The guest read its disk back: the image's checksum, on v2, booted from the disk.
  assert.equal(await bootsFromDisk(serial), 1, 'one boot from the disk after the deploy');
  assert.match(await readFile(serial, 'latin1'), new RegExp(`booted from disk /dev/vda \\(sha256:${sum}\\)`));
  assert.equal(await sha256Of(path.join(vm, 'disk.img'), IMAGE_BYTES), sum);
  t.diagnostic(
    `${HOST}: lab OS 2 deployed, verified and booted from disk in ${Math.round((Date.now() - started) / 1000)} s`,
  );

  // A power cycle outside Vaquero, straight at lab-03's BMC (Redfish, as an operator's curl would):
  // the machine is not armed, iPXE leaves for the disk.
  await run('ip', [
    ...['netns', 'exec', `${ctx.prefix}-lab`, 'curl', '-sSf', '-u', `${BMC_USER}:${BMC_PASSWORD}`],
    ...['-H', 'content-type: application/json', '-d', '{"ResetType":"PowerCycle"}'],
    `http://${BMC}/redfish/v1/Systems/${HOST}/Actions/ComputerSystem.Reset`,
  ]);
  await until('a second boot from the disk', async () =>
    (await bootsFromDisk(serial)) === 2 ? true : undefined,
  );

  // One byte changed, the checksum not: the canary fails at the image step, its disk not bootable.
  const image = await readFile(path.join(LAB_CACHE, 'images/lab-os-2.img'));
  image[8 * MiB] = (image[8 * MiB] ?? 0) ^ 0xff;
  await writeFile(path.join(ctx.state, 'files/images/lab-os-2-bad.img'), image);
  await writeFile(
    path.join(ctx.sot, 'boot/lab-deploy.yaml'),
    profile('/files/images/lab-os-2-bad.img', 'raw', `sha256:${sum}`),
  );
  const bad = await commitAll(ctx.sot, `${HOST}: a corrupted image`);
  const failure = await hostOutcome(ctx, bad);
  const got = createHash('sha256').update(image).digest('hex');
  assert.equal(
    failure,
    `${HOST}: stage 1 image: checksum mismatch: expected sha256:${sum}, got sha256:${got} (${IMAGE_BYTES} bytes)`,
  );
  const head = Buffer.alloc(MiB);
  const fd = await open(path.join(vm, 'disk.img'), 'r');
  await fd.read(head, 0, MiB, 0);
  await fd.close();
  assert.ok(
    head.every((b) => b === 0),
    "the failed deploy left the disk's first MiB zeroed",
  );
  t.diagnostic(`image phase: ${Math.round((Date.now() - started) / 1000)} s`);
}

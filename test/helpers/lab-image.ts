// Issue 14 items 1 and 2 in the virtual lab (run at the end of lab-two-agents.test.ts on its lab, to
// spare CI a second one): a commit moves two machines to a group whose profile deploys the lab OS
// image v2 to their disks, both in one wave: lab-03 (BIOS, behind the Redfish BMC) and lab-04 (UEFI,
// OVMF, behind ipmi_sim). The rollout writes it through the deploy ramdisk, each workflow sees it
// verified, each machine reboots from its disk on v2 (syslinux on the BIOS one, systemd-boot on the
// UEFI one; the validation job reads it), and a power cycle straight at each BMC (curl at Redfish,
// ipmitool at IPMI) brings it up from the disk again. Then a commit pointing at the same image with
// one byte changed (checksum unchanged) fails the canary at the image step with the mismatch, the
// canary's disk's first MiB (its boot sector and partition table) left zeroed, the other untouched.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { BMC_PASSWORD, BMC_USER } from '../../cli/lab/bmc';
import { powerCommands } from '../../cli/lab/machines';
import type { ReprovisionHostResult } from '../../schemas/rollout';
import { git, labUntil } from './lab-test';
import { podmanJobImage } from './podman';
import { LAB_CACHE } from './qemu';

const run = promisify(execFile);
const IMAGE_BYTES = 24 * 1024 * 1024;
const MiB = 1024 * 1024;

interface DiskMachine {
  host: string;
  ipv4: string;
  firmware: 'bios' | 'uefi';
  loader: string;
  /** A power cycle at its BMC, outside Vaquero: argv run in the lab namespace. */
  powerCycle: string[];
}

const MACHINES: DiskMachine[] = [
  {
    host: 'lab-03',
    ipv4: '10.77.0.13',
    firmware: 'bios',
    loader: 'syslinux',
    // Redfish, as an operator's curl would.
    powerCycle: [
      ...['curl', '-sSf', '-u', `${BMC_USER}:${BMC_PASSWORD}`, '-H', 'content-type: application/json'],
      ...['-d', '{"ResetType":"PowerCycle"}'],
      'http://10.77.0.4/redfish/v1/Systems/lab-03/Actions/ComputerSystem.Reset',
    ],
  },
  {
    host: 'lab-04',
    ipv4: '10.77.0.14',
    firmware: 'uefi',
    loader: 'systemd-boot',
    powerCycle: [
      ...['ipmitool', '-I', 'lanplus', '-C', '3', '-H', '10.77.0.5', '-U', BMC_USER, '-P', BMC_PASSWORD],
      ...['chassis', 'power', 'cycle'],
    ],
  },
];

export interface LabImageContext {
  client: Client;
  sot: string;
  state: string;
  prefix: string;
}

const DEADLINE_MS = 10 * 60_000;

const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  labUntil(what, DEADLINE_MS, probe);

/** Container jobs (issue 14 item 5) in the job image, sharing the agent's network to reach the host. */
function containerJobs(image: string, phase: 'pre_shutdown' | 'validation'): string[] {
  const job = (name: string, script: string) => [
    `  - name: ${name}`,
    '    type: container',
    `    image: ${image}`,
    '    network: host',
    `    args: ["sh", "-c", "${script}"]`,
    '    timeout: 3m',
  ];
  const status = 'wget -q -O- http://{{ host.ipv4 }}/status.json';
  return phase === 'pre_shutdown'
    ? job('drain', `echo draining {{ host.name }}; ${status}`)
    : job('on-disk', `${status} | grep os_version.:2 && echo validated {{ host.name }} on lab OS 2`);
}

function profile(url: string, format: string, checksum: string, jobImage?: string): string {
  return [
    'id: lab-deploy',
    'os: lab-linux',
    // One disk per lab machine, so its kernel name serves both (a serial: hint names one machine).
    `image: { url: ${url}, format: ${format}, checksum: "${checksum}", disk: /dev/vda }`,
    ...(jobImage ? ['pre_shutdown:', ...containerJobs(jobImage, 'pre_shutdown')] : []),
    'validation:',
    '  - name: os-version',
    '    type: http',
    '    url: "http://{{ host.ipv4 }}/status.json"',
    '    expect_json: { path: os_version, equals: 2 }',
    '    timeout: 5m',
    '    retries: 90',
    '    retry_delay: 2s',
    ...(jobImage ? containerJobs(jobImage, 'validation') : []),
    '',
  ].join('\n');
}

/** canary 0: both machines in one wave (the lab run's time); 1 for the corrupted image. */
const group = (canary: number) =>
  `id: lab-disk\nboots: [lab-deploy]\nboot_retries: 0\nrollout: { canary: ${canary}, max_concurrent: 2, max_fail: 0 }\n`;

async function commitAll(sot: string, message: string): Promise<string> {
  await git(sot, ['add', '-A']);
  await git(sot, ['commit', '-q', '-m', message]);
  return git(sot, ['rev-parse', 'HEAD']);
}

const hostWorkflow = (ctx: LabImageContext, host: string, commit: string) =>
  ctx.client.workflow.getHandle(`host/lab/${host}/${commit.slice(0, 7)}`);

/** The host's reprovision of a commit, once closed: 'ok', or the failure message; and its result. */
async function hostOutcome(
  ctx: LabImageContext,
  host: string,
  commit: string,
): Promise<{ outcome: string; result?: ReprovisionHostResult }> {
  const handle = hostWorkflow(ctx, host, commit);
  await until(`${host}'s workflow of ${commit.slice(0, 7)}`, async () =>
    (await handle.describe()).status.name === 'RUNNING' ? undefined : true,
  );
  return handle.result().then(
    (result: ReprovisionHostResult) => ({ outcome: result.ok ? 'ok' : `failed: ${result.error}`, result }),
    (e: unknown) => ({ outcome: e instanceof WorkflowFailedError ? String(e.cause?.message) : String(e) }),
  );
}

/** The container jobs' output, in the host's result and in its workflow's history (activity results). */
async function assertContainerJobs(
  ctx: LabImageContext,
  m: DiskMachine,
  commit: string,
  result?: ReprovisionHostResult,
) {
  const jobs = (result?.jobs ?? []).filter((j) => j.type === 'container');
  assert.deepEqual(
    jobs.map((j) => [j.name, j.ok]),
    [
      ['drain', true],
      ['on-disk', true],
    ],
    `${m.host}'s container jobs`,
  );
  assert.match(jobs[0]?.output ?? '', new RegExp(`^draining ${m.host}\n\\{"booted":true`, 'm'));
  assert.match(jobs[1]?.output ?? '', new RegExp(`"from":"disk".*"firmware":"${m.firmware}"`));
  assert.match(jobs[1]?.output ?? '', new RegExp(`^validated ${m.host} on lab OS 2$`, 'm'));
  const history = await hostWorkflow(ctx, m.host, commit).fetchHistory();
  const recorded = (history.events ?? []).flatMap((e) => {
    const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    return payload ? [Buffer.from(payload).toString('utf8')] : [];
  });
  for (const line of [`draining ${m.host}`, `validated ${m.host} on lab OS 2`])
    assert.ok(
      recorded.some((r) => r.includes(line)),
      `${m.host}'s history holds "${line}"`,
    );
}

async function readHead(file: string, bytes: number): Promise<Buffer> {
  const fd = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fd.read(buf, 0, bytes, 0);
    return buf;
  } finally {
    await fd.close();
  }
}

const vmDir = (ctx: LabImageContext, host: string) => path.join(ctx.state, 'vms', host);

/** The serial console's boots from the disk on v2, each with the checksum read back and the loader. */
async function diskBoots(ctx: LabImageContext, m: DiskMachine): Promise<string[]> {
  const text = await readFile(path.join(vmDir(ctx, m.host), 'serial.log'), 'latin1');
  return [
    ...text.matchAll(
      /lab OS version 2 booted from disk \/dev\/vda \(sha256:([0-9a-f]{64})\) by (\S+) \((\w+)\)/g,
    ),
  ].map(([, sum, loader, firmware]) => `${sum} ${loader} ${firmware}`);
}

/** What the booted OS's validation endpoint says, fetched from the agent's namespace. */
async function guestStatus(ctx: LabImageContext, m: DiskMachine): Promise<Record<string, unknown>> {
  const { stdout } = await run('ip', [
    ...['netns', 'exec', `${ctx.prefix}-agent`, 'curl', '-sSf', '--max-time', '5'],
    `http://${m.ipv4}/status.json`,
  ]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function assertOnDisk(ctx: LabImageContext, m: DiskMachine, sum: string, boots: number) {
  const want = `${sum} ${m.loader} ${m.firmware}`;
  await until(`${m.host}: boot ${boots} from its disk`, async () =>
    (await diskBoots(ctx, m)).length >= boots ? true : undefined,
  );
  assert.deepEqual(await diskBoots(ctx, m), Array<string>(boots).fill(want), `${m.host}'s boots from disk`);
  const status = await until(`${m.host}'s /status.json`, () => guestStatus(ctx, m));
  assert.equal(status.os_version, 2);
  assert.equal(status.from, 'disk');
  assert.equal(status.disk, `sha256:${sum}`);
  assert.equal(status.firmware, m.firmware);
}

export async function labImageDeploy(t: TestContext, ctx: LabImageContext): Promise<void> {
  const started = Date.now();
  const sum = (await readFile(path.join(LAB_CACHE, 'images/lab-os-2.img.sha256'), 'utf8')).trim();
  const hosts = path.join(ctx.sot, 'sites/lab/hosts/machines.yaml');
  // Built locally (no registry); absent only where podman is not installed (the test says so).
  const jobImage = await podmanJobImage(t);
  await writeFile(
    path.join(ctx.sot, 'boot/lab-deploy.yaml'),
    profile('/files/images/lab-os-2.img.zst', 'raw+zstd', `sha256:${sum}`, jobImage),
  );
  await writeFile(path.join(ctx.sot, 'workflows/lab-disk.yaml'), group(0));
  let text = await readFile(hosts, 'utf8');
  for (const { host } of MACHINES) {
    const moved = text.replace(`name: ${host}\ngroup: lab\n`, `name: ${host}\ngroup: lab-disk\n`);
    assert.notEqual(moved, text, `${host} moved to lab-disk`);
    text = moved;
  }
  await writeFile(hosts, text);
  const good = await commitAll(ctx.sot, 'lab-03, lab-04: deploy lab OS 2 to their disks');
  const outcomes = await Promise.all(MACHINES.map((m) => hostOutcome(ctx, m.host, good)));
  assert.deepEqual(
    outcomes.map((o) => o.outcome),
    ['ok', 'ok'],
  );
  if (jobImage)
    for (const [i, m] of MACHINES.entries()) await assertContainerJobs(ctx, m, good, outcomes[i]?.result);
  // Each guest read its disk back: the image's checksum, v2, booted from the disk by its loader.
  for (const m of MACHINES) {
    await assertOnDisk(ctx, m, sum, 1);
    const disk = await readHead(path.join(vmDir(ctx, m.host), 'disk.img'), IMAGE_BYTES);
    assert.equal(createHash('sha256').update(disk).digest('hex'), sum, `${m.host}'s disk file`);
  }
  t.diagnostic(
    `lab-03 (BIOS) and lab-04 (UEFI): lab OS 2 deployed, verified and booted from disk in ${Math.round((Date.now() - started) / 1000)} s`,
  );

  // A power cycle outside Vaquero, straight at each BMC: not armed, iPXE leaves for the disk.
  const netns = ['netns', 'exec', `${ctx.prefix}-lab`];
  await Promise.all(MACHINES.map((m) => run('ip', [...netns, ...m.powerCycle])));
  await Promise.all(MACHINES.map((m) => assertOnDisk(ctx, m, sum, 2)));
  t.diagnostic(
    `power cycles at the BMCs: both up from disk after ${Math.round((Date.now() - started) / 1000)} s`,
  );

  // One byte changed, the checksum not: the canary fails at the image step, its disk not bootable,
  // the other machine not touched.
  const image = await readFile(path.join(LAB_CACHE, 'images/lab-os-2.img'));
  image[8 * MiB] = (image[8 * MiB] ?? 0) ^ 0xff;
  await writeFile(path.join(ctx.state, 'files/images/lab-os-2-bad.img'), image);
  await writeFile(
    path.join(ctx.sot, 'boot/lab-deploy.yaml'),
    profile('/files/images/lab-os-2-bad.img', 'raw', `sha256:${sum}`),
  );
  await writeFile(path.join(ctx.sot, 'workflows/lab-disk.yaml'), group(1));
  const power = await Promise.all(MACHINES.map((m) => powerCommands(vmDir(ctx, m.host))));
  const bad = await commitAll(ctx.sot, 'lab-03, lab-04: a corrupted image');
  const canary = await until('the canary of the corrupted image', async () => {
    for (const m of MACHINES)
      if (
        await hostWorkflow(ctx, m.host, bad)
          .describe()
          .then(
            () => true,
            () => false,
          )
      )
        return m;
    return undefined;
  });
  const failure = (await hostOutcome(ctx, canary.host, bad)).outcome;
  const got = createHash('sha256').update(image).digest('hex');
  assert.equal(
    failure,
    `${canary.host}: stage 1 image: checksum mismatch: expected sha256:${sum}, got sha256:${got} (${IMAGE_BYTES} bytes)`,
  );
  const head = await readHead(path.join(vmDir(ctx, canary.host), 'disk.img'), MiB);
  assert.ok(
    head.every((b) => b === 0),
    "the failed deploy left the disk's first MiB zeroed",
  );
  const other = MACHINES.findIndex((m) => m !== canary);
  const otherHost = MACHINES[other]?.host ?? '';
  await assert.rejects(hostWorkflow(ctx, otherHost, bad).describe(), WorkflowNotFoundError);
  assert.deepEqual(await powerCommands(vmDir(ctx, otherHost)), power[other], `${otherHost} not touched`);
  t.diagnostic(`image phase: ${Math.round((Date.now() - started) / 1000)} s`);
}

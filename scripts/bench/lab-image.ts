// Image deployment on the lab's machines (docs/images.md), in one run: a SoT whose profile deploys
// the lab OS image v2 (raw+zstd) to every machine, BIOS and UEFI, rolled out by `vaquero lab up`'s
// first commit (canary 1, then the other five at once). For each machine it prints:
//   - the image write throughput: the deploy ramdisk streaming the image from its agent through
//     zstd onto the disk (fsync'd), as its serial console reports it;
//   - the disk's raw write speed in the same guest, the peer: the same image, kept in RAM, written
//     again to the same disk by a plain `dd conv=fsync` (`vaquero.image.bench=1` on its command line);
//   - the whole install cycle: the host workflow from its start to its close (pre-shutdown, power
//     cycle over IPMI/Redfish, DHCP, TFTP, iPXE, deploy ramdisk, image, checkpoint, reboot from the
//     disk, validation of the OS on it).
//
//   sudo npx tsx scripts/bench/lab-image.ts
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { labCommand } from '../../cli/lab/command';

const run = promisify(execFile);
const CACHE = path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'lab');
const EXAMPLE = new URL('../../examples/lab', import.meta.url).pathname;
const HOSTS = ['lab-01', 'lab-02', 'lab-03', 'lab-04', 'lab-05', 'lab-06'];
const quiet = {
  out: () => undefined,
  err: (t: string) => void process.stderr.write(t),
  cwd: () => process.cwd(),
};

/** examples/lab with every machine in a group that deploys lab OS 2, committed: lab up's first rollout. */
async function deploySot(sot: string): Promise<void> {
  await cp(EXAMPLE, sot, { recursive: true });
  const sum = (await readFile(path.join(CACHE, 'images/lab-os-2.img.sha256'), 'utf8')).trim();
  await writeFile(
    path.join(sot, 'boot/lab-live.yaml'),
    [
      'id: lab-live',
      'os: lab-linux',
      `image: { url: /files/images/lab-os-2.img.zst, format: raw+zstd, checksum: "sha256:${sum}", disk: /dev/vda }`,
      'validation:',
      '  - { name: os, type: http, url: "http://{{ host.ipv4 }}/status.json", expect_json: { path: os_version, equals: 2 }, timeout: 5m, retries: 90, retry_delay: 2s }',
      '',
    ].join('\n'),
  );
  const os = path.join(sot, 'os/lab-linux.yaml');
  await writeFile(
    os,
    (await readFile(os, 'utf8')).replace('vaquero.marker=v1', 'vaquero.marker=v1 vaquero.image.bench=1'),
  );
  const group = path.join(sot, 'workflows/lab.yaml');
  await writeFile(group, (await readFile(group, 'utf8')).replace('max_concurrent: 2', 'max_concurrent: 5'));
  const git = (a: string[]) =>
    run('git', ['-C', sot, '-c', 'user.name=b', '-c', 'user.email=b@b.invalid', ...a]);
  await git(['init', '-q', '-b', 'main']);
  await git(['add', '-A']);
  await git(['commit', '-q', '-m', 'bench: deploy lab OS 2 to every machine']);
}

interface Row {
  host: string;
  firmware: string;
  stream?: string;
  raw?: string;
  ratio?: string;
  cycle: string;
}

const MIBS = /in ([\d.]+) s \(([\d.]+) MiB\/s\)/;

async function row(client: Client, state: string, host: string, commit: string): Promise<Row> {
  const d = await client.workflow.getHandle(`host/lab/${host}/${commit.slice(0, 7)}`).describe();
  const cycle = d.closeTime ? ((d.closeTime.getTime() - d.startTime.getTime()) / 1000).toFixed(1) : '?';
  const serial = await readFile(path.join(state, 'vms', host, 'serial.log'), 'latin1');
  const stream = serial.match(new RegExp(`streamed \\d+ bytes to the disk ${MIBS.source}`))?.slice(1);
  const raw = serial
    .match(new RegExp(`bench: raw dd of the same \\d+ bytes from RAM ${MIBS.source}`))
    ?.slice(1);
  const firmware = (await readFile(path.join(state, 'vms', host, 'machine.json'), 'utf8')).includes('"uefi"')
    ? 'uefi'
    : 'bios';
  return {
    host,
    firmware,
    ...(stream ? { stream: `${stream[1]} MiB/s (${stream[0]} s)` } : {}),
    ...(raw ? { raw: `${raw[1]} MiB/s (${raw[0]} s)` } : {}),
    ...(stream && raw ? { ratio: (Number(stream[1]) / Number(raw[1])).toFixed(2) } : {}),
    cycle,
  };
}

const dir = await mkdtemp(path.join(tmpdir(), 'vql-bench-image-'));
const state = path.join(dir, 'lab');
const args = ['--state', state, '--prefix', 'vqlbimg', '--ui-port', '18234', '--temporal-port', '17235'];
try {
  await deploySot(path.join(state, 'sot'));
  const commit = (await run('git', ['-C', path.join(state, 'sot'), 'rev-parse', 'HEAD'])).stdout.trim();
  const started = performance.now();
  await labCommand(['up', ...args], quiet);
  const connection = await Connection.connect({ address: '127.0.0.1:17235' });
  const client = new Client({ connection, namespace: 'default' });
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const d = await client.workflow
      .getHandle(`rollout/lab/${commit.slice(0, 7)}`)
      .describe()
      .catch(() => undefined);
    if (d && d.status.name !== 'RUNNING') break;
    if (Date.now() > deadline) throw new Error('the rollout did not close within 30 min');
    await new Promise((r) => setTimeout(r, 1000));
  }
  const wall = (performance.now() - started) / 1000;
  const rows = await Promise.all(HOSTS.map((h) => row(client, state, h, commit)));
  await connection.close();
  process.stdout.write(
    [
      'image deployment, lab OS 2 (24 MiB raw, raw+zstd from the agent), per machine:',
      '  host (firmware): streamed to disk | raw dd from RAM, same guest, same disk | ratio | install cycle',
      ...rows.map(
        (r) =>
          `  ${r.host} (${r.firmware}): ${r.stream ?? '-'} | ${r.raw ?? '-'} | ${r.ratio ?? '-'} | ${r.cycle} s`,
      ),
      `lab up + rollout of all ${HOSTS.length} (canary, then 5 at once): ${wall.toFixed(1)} s`,
      '',
    ].join('\n'),
  );
} finally {
  await labCommand(['down', ...args, '--purge'], quiet).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

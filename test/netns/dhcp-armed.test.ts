// The agent's boot services (test/helpers/boot-services.ts: the wiring of agent/services.ts) with one
// host armed in the netboot table: its DHCP events must not say "(not armed)", another host's must.
// Those events go to the journal, the logs and the workflow's history (issue 18 item 7).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createNetnsPair, netnsProblem } from '../../cli/lab/netns';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { repoRoot, sotMin } from '../helpers/sot';

const AGENT_IP = '10.10.0.5';
const CORE1 = '52:54:00:10:00:01';
const CORE2 = '52:54:00:10:00:02';

test('DHCP events of an armed host do not say "(not armed)"', { timeout: 60_000 }, async (t) => {
  const missing = (await netnsProblem()) ?? (BUSYBOX ? undefined : 'busybox not found');
  if (missing) {
    if (process.env.CI && process.env.CI !== 'false') throw new Error(`${missing}; CI must provide it`);
    t.skip(missing);
    return;
  }
  const work = await mkdtemp(path.join(tmpdir(), 'vqd-armed-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const files = path.join(work, 'files');
  await mkdir(files);
  const netboot = path.join(work, 'netboot.json');
  const armedAt = new Date().toISOString();
  const entry = { mac: CORE1, site: 'lab1', host: 'core-01', commit: 'sot', stage: 1, armedAt };
  await writeFile(netboot, JSON.stringify([{ ...entry, workflowId: 'host/lab1/core-01/sot', token: 't' }]));

  const net = await createNetnsPair({ tag: 'vqarm', a: [`${AGENT_IP}/24`] });
  t.after(() => net.close());
  const child = net.spawn(net.a, process.execPath, [
    ...['--import', 'tsx', path.join(repoRoot, 'test/helpers/boot-services.ts')],
    ...['--sot', sotMin, '--site', 'lab1', '--netboot', netboot, '--files', files],
    ...['--address', AGENT_IP, '--tftp-root', files],
  ]);
  const events: { mac: string; kind: string; detail?: string }[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = JSON.parse(line) as { ready?: boolean; event?: (typeof events)[number] };
        if (parsed.ready) resolve();
        if (parsed.event) events.push(parsed.event);
      }
    });
    child.once('exit', (code) => reject(new Error(`boot services exited (${code}):\n${stderr}`)));
  });

  for (const mac of [CORE1, CORE2]) {
    await setMac(net, net.b, net.ifB, mac);
    await udhcpc(net, net.b, net.ifB, work, { tries: 3, timeoutS: 1 });
  }
  const dhcp = (mac: string) => events.filter((e) => e.kind === 'dhcp' && e.mac === mac);
  assert.ok(
    dhcp(CORE1).some((e) => e.detail?.startsWith('DISCOVER -> OFFER 10.10.0.11')),
    JSON.stringify(events),
  );
  assert.ok(
    dhcp(CORE1).every((e) => !e.detail?.includes('not armed')),
    JSON.stringify(dhcp(CORE1)),
  );
  assert.ok(
    dhcp(CORE2).some((e) => e.detail === 'DISCOVER -> OFFER 10.10.0.12 (not armed)'),
    JSON.stringify(dhcp(CORE2)),
  );
});

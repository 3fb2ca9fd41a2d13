// Racks and redundant agents (issue 13): each host's boot URLs point at an agent that serves its
// subnet (the one answering, when it does), and a relay from a rack the agent does not serve is
// left to that rack's agent.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MessageType } from '../../agent/dhcp/codec';
import { createAssetApp } from '../../agent/http/app';
import { handleDhcp } from '../../agent/dhcp/handler';
import { leasesFromModel, mapBackend, relayFilter, servedCidrs } from '../../agent/dhcp/leases';
import { ipxeScript, renderStage } from '../../sot/boot-chain';
import { chainPeers } from '../../sot/serving-agent';
import { validateSot } from '../../sot/validate';
import type { Model } from '../../schemas/model';
import { own } from '../../schemas/common';
import { dhcpRequest } from '../helpers/dhcp-packets';
import { materialize, removeSot, repoRoot } from '../helpers/sot';

let model: Model;
let dir: string;

before(async () => {
  dir = await materialize(path.join(repoRoot, 'test/fixtures/racks'));
  const result = await validateSot(dir);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  model = result.model;
});
after(() => removeSot(dir));

const host = (name: string) => {
  const found = own(model.sites, 'lab1')?.hosts.find((h) => h.name === name);
  assert.ok(found, name);
  return found;
};

test("a rack host's iPXE script, kernel, initrd and checkpoint point at its rack's agent", () => {
  const stage = renderStage(model, 'lab1', host('r2-01'), 0, 'tok');
  const script = ipxeScript(stage);
  assert.ok(stage.kernel.startsWith('http://10.99.0.5:8080/files/'), stage.kernel);
  assert.ok(
    stage.initrds.every((i) => i.startsWith('http://10.99.0.5:8080/files/')),
    stage.initrds.join(),
  );
  assert.equal(stage.context.urls.checkpoint, 'http://10.99.0.5:8080/checkpoint/52-54-00-12-00-01/1/tok');
  assert.doesNotMatch(script, /10\.10\.0\.5/);
  // The rack agent cannot hand out the URLs of a subnet it does not serve, even when it renders.
  const elsewhere = renderStage(model, 'lab1', host('r2-01'), 0, 'tok', 'lab1-agent-b');
  assert.equal(elsewhere.kernel, stage.kernel);
});

test('each agent of a redundant pair renders its own URLs; the server renders the first serving one', () => {
  const byB = renderStage(model, 'lab1', host('st-01'), 0, 'tok', 'lab1-agent-b');
  assert.ok(byB.kernel.startsWith('http://10.10.0.6:8080/files/'), byB.kernel);
  assert.match(byB.context.urls.checkpoint, /^http:\/\/10\.10\.0\.6:8080\/checkpoint\//);
  assert.match(ipxeScript(byB), /ds=nocloud-net;s=http:\/\/10\.10\.0\.6:8080\/unattended\//);
  // A is only B's fallback: after `||`, never first in a line, never in the config or the cmdline.
  for (const line of ipxeScript(byB).split('\n'))
    assert.doesNotMatch(line.split(' || ')[0] ?? '', /10\.10\.0\.5/, line);
  assert.doesNotMatch(byB.cmdline + (byB.unattended?.content ?? ''), /10\.10\.0\.5/);
  const byServer = renderStage(model, 'lab1', host('st-01'), 0, 'tok');
  assert.ok(byServer.kernel.startsWith('http://10.10.0.5:8080/files/'), byServer.kernel);
});

test('the leases of each agent name itself as next server and script host', () => {
  const b = leasesFromModel(model, 'lab1', new Set(), 'lab1-agent-b');
  assert.equal(b.get('52:54:00:10:00:01')?.tftpServer, '10.10.0.6');
  assert.equal(b.get('52:54:00:10:00:01')?.ipxeScriptUrl, 'http://10.10.0.6:8080/ipxe/52-54-00-10-00-01');
  // A host of the other rack keeps its rack agent's URLs whichever agent built the table.
  assert.equal(b.get('52:54:00:12:00:01')?.assetUrl, 'http://10.99.0.5:8080');
  const rack = leasesFromModel(model, 'lab1', new Set(), 'lab1-rack2-agent');
  assert.equal(rack.get('52:54:00:12:00:01')?.tftpServer, '10.99.0.5');
  assert.equal(rack.get('52:54:00:10:00:01')?.tftpServer, '10.10.0.5');
});

test('a relayed DISCOVER from a rack the agent does not serve is ignored and counted as such', () => {
  const leases = leasesFromModel(model, 'lab1', new Set(), 'lab1-agent');
  assert.deepEqual(servedCidrs(model, 'lab1', 'lab1-agent'), ['10.10.0.0/24', '10.11.0.0/24']);
  const ctx = {
    serverIp: '10.10.0.5',
    backend: mapBackend(leases, relayFilter(servedCidrs(model, 'lab1', 'lab1-agent'))),
    now: new Date('2026-01-02T03:04:05Z'),
  };
  const discover = (giaddr: string, mac: string) =>
    handleDhcp(dhcpRequest({ type: MessageType.Discover, giaddr, mac }), ctx);
  const foreign = discover('10.12.0.1', '52:54:00:12:00:01');
  assert.equal(foreign.outcome, 'unserved-relay');
  assert.equal(foreign.reply, undefined);
  assert.equal(foreign.event, undefined);
  assert.match(foreign.log?.msg ?? '', /relayed by 10\.12\.0\.1: not in a subnet this agent serves/);
  // A relay on a subnet it serves (the storage network) is answered.
  const served = discover('10.11.0.1', '52:54:00:10:01:01');
  assert.equal(served.outcome, 'offer');
  assert.equal(served.reply?.to.address, '10.11.0.1');
});

test("an agent's HTTP server hands out its own chain and stage scripts", async () => {
  const mac = '52:54:00:10:01:01';
  const entry = {
    ...{ mac, site: 'lab1', host: 'st-01', commit: 'c1', stage: 1 },
    ...{
      workflowId: 'reprovision-lab1-st-01',
      armedAt: '2026-01-01T00:00:00Z',
      token: 'st-01-token-of-this-test',
    },
  };
  const app = createAssetApp({
    models: { forCommit: () => Promise.resolve(model), current: () => model },
    site: 'lab1',
    agent: 'lab1-agent-b',
    netboot: { lookup: (m) => Promise.resolve(m === mac ? entry : undefined) },
    events: { emit: () => undefined },
    filesDir: path.join(dir, 'no-files'),
    log: () => undefined,
  });
  const chain = await (await app.request('/boot.ipxe')).text();
  assert.match(chain, /chain --autofree http:\/\/10\.10\.0\.6:8080\/ipxe\//);
  const script = await (await app.request('/ipxe/52-54-00-10-01-01')).text();
  assert.match(
    script,
    /^kernel http:\/\/10\.10\.0\.6:8080\/files\/ubuntu\/24\.04\.1\/vmlinuz\?token=st-01-token-of-this-test /m,
  );
  assert.match(
    script,
    /^kernel http:\/\/10\.10\.0\.6:8080\/files\/\S+ .* \|\| kernel http:\/\/10\.10\.0\.5:8080\/files\/ubuntu\/24\.04\.1\/vmlinuz\?token=st-01-token-of-this-test /m,
  );
});

test("a pair's script falls back to the other agent for kernel and initrds; a lone rack agent's does not", () => {
  const stage = renderStage(model, 'lab1', host('st-01'), 0, 'tok');
  const lines = ipxeScript(stage).split('\n');
  const kernel = lines.find((l) => l.startsWith('kernel '))?.split(' || ') ?? [];
  assert.equal(kernel.length, 2, lines.join('\n'));
  assert.ok(kernel[0]?.startsWith(`kernel ${stage.kernel} `), kernel[0]);
  // The fallback's command line is B's too: an OS whose kernel came from B fetches its config there.
  assert.equal(kernel[1], kernel[0]?.replaceAll('http://10.10.0.5:8080/', 'http://10.10.0.6:8080/'));
  assert.match(kernel[1] ?? '', /ds=nocloud-net;s=http:\/\/10\.10\.0\.6:8080\/unattended\//);
  const initrds = lines.filter((l) => l.startsWith('initrd '));
  assert.equal(initrds.length, stage.initrds.length);
  for (const [i, line] of initrds.entries())
    assert.deepEqual(
      line.split(' || ').map((c) => c.split(' ').at(-1)),
      [stage.initrds[i], stage.initrds[i]?.replace('10.10.0.5', '10.10.0.6')],
    );
  assert.deepEqual(stage.context.urls.checkpoints, [
    'http://10.10.0.5:8080/checkpoint/52-54-00-10-01-01/1/tok',
    'http://10.10.0.6:8080/checkpoint/52-54-00-10-01-01/1/tok',
  ]);
  const rack = renderStage(model, 'lab1', host('r2-01'), 0, 'tok');
  assert.doesNotMatch(ipxeScript(rack), /\|\| kernel|\|\| initrd/);
  assert.deepEqual(rack.context.urls.checkpoints, [rack.context.urls.checkpoint]);
});

test('the other agent serves the kernel, initrd and checkpoint of a script its peer rendered', async (t) => {
  const files = await mkdtemp(path.join(tmpdir(), 'vq-peer-files-'));
  t.after(() => rm(files, { recursive: true, force: true }));
  await mkdir(path.join(files, 'ubuntu/24.04.1'), { recursive: true });
  await writeFile(path.join(files, 'ubuntu/24.04.1/vmlinuz'), 'kernel bytes');
  await writeFile(path.join(files, 'ubuntu/24.04.1/initrd'), 'initrd bytes');
  const mac = '52:54:00:10:01:01';
  const entry = {
    ...{ mac, site: 'lab1', host: 'st-01', commit: 'c1', stage: 1, workflowId: 'w' },
    ...{ armedAt: '2026-01-01T00:00:00Z', token: 'peer-token-0123456789' },
  };
  // One arming, as both agents read it from the site-wide boot state.
  const armed = {
    lookup: (m: string) => Promise.resolve(m === mac ? entry : undefined),
    list: () => Promise.resolve([entry]),
  };
  const events: { agent: string; kind: string }[] = [];
  const app = (agent: string) =>
    createAssetApp({
      models: { forCommit: () => Promise.resolve(model), current: () => model },
      ...{ site: 'lab1', agent, netboot: armed, filesDir: files, log: () => undefined },
      events: { emit: (e) => void events.push({ agent, kind: e.kind }) },
    });
  const a = app('lab1-agent');
  const b = app('lab1-agent-b');
  const script = await (await a.request('/ipxe/52-54-00-10-01-01')).text();
  // A dies after handing out the script: what the host falls back to is B's.
  const fallbacks = script
    .split('\n')
    .filter((l) => /^(kernel|initrd) .* \|\| /.test(l))
    .map((l) => l.split(' || ')[1]?.split(' ')[l.startsWith('kernel') ? 1 : 3] ?? '');
  assert.equal(fallbacks.length, 2, script);
  for (const url of fallbacks) {
    assert.ok(url.startsWith('http://10.10.0.6:8080/files/'), url);
    const res = await b.request(url.replace('http://10.10.0.6:8080', ''));
    assert.equal(res.status, 200, url);
  }
  const checkpoint = renderStage(model, 'lab1', host('st-01'), 0, entry.token);
  const peerCheckpoint = checkpoint?.context.urls.checkpoints[1] ?? '';
  assert.match(peerCheckpoint, /^http:\/\/10\.10\.0\.6:8080\/checkpoint\//);
  assert.equal((await b.request(peerCheckpoint.replace('http://10.10.0.6:8080', ''))).status, 204);
  assert.deepEqual(events, [
    { agent: 'lab1-agent', kind: 'ipxe' },
    { agent: 'lab1-agent-b', kind: 'kernel' },
    { agent: 'lab1-agent-b', kind: 'initrd' },
    { agent: 'lab1-agent-b', kind: 'checkpoint' },
  ]);
});

test("/boot.ipxe chains to the answering agent, then to the other agents of the client's subnet", async () => {
  const site = own(model.sites, 'lab1')?.site;
  assert.ok(site);
  const agent = (name: string) => site.agents.find((a) => a.name === name);
  // A client on the pair's subnet falls back to the other of the pair, never to the rack's agent.
  assert.deepEqual(chainPeers(site, agent('lab1-agent-b'), '10.10.0.77'), ['http://10.10.0.5:8080']);
  assert.deepEqual(chainPeers(site, agent('lab1-rack2-agent'), '10.12.0.40'), []);
  // An address on no subnet (in-process, a proxy): the agents sharing a subnet with the answering one.
  assert.deepEqual(chainPeers(site, agent('lab1-agent'), undefined), ['http://10.10.0.6:8080']);
  const app = createAssetApp({
    models: { forCommit: () => Promise.resolve(model), current: () => model },
    ...{ site: 'lab1', agent: 'lab1-agent', filesDir: path.join(dir, 'no-files'), log: () => undefined },
    netboot: { lookup: () => Promise.resolve(undefined) },
    events: { emit: () => undefined },
  });
  assert.equal(
    await (await app.request('/boot.ipxe')).text(),
    '#!ipxe\nchain --autofree http://10.10.0.5:8080/ipxe/${mac:hexhyp} || isset ${vaquero-local} || ' +
      'chain --autofree http://10.10.0.6:8080/ipxe/${mac:hexhyp} || isset ${vaquero-local} || ' +
      'echo vaquero: no agent served a script, booting from local disk\n' +
      'iseq ${platform} efi || exit\nexit 1\n',
  );
});

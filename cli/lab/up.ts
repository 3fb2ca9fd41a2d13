// `vaquero lab up`: the namespaces, one BMC per machine (machines powered off), `vaquero standalone
// --no-agent` in the agent namespace, the site's two agents (cli/lab/agents.ts), the relayed rack
// (cli/lab/rack.ts), a Prometheus for metric gates (cli/lab/prometheus.ts), and two forwarders to
// 127.0.0.1. Each step starts only what does not run yet, so `lab up` run again restarts a killed
// agent, say.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CliError, type Io } from '../io';
import { BMC_PASSWORD, prepareBmc } from './bmc';
import { startAgents, startRackDaemons } from './agents';
import { daemon, waitForLog } from './daemons';
import { labMachines, REPO, SITE, type LabOptions } from './lab-state';
import { prepareVm, type LabMachine } from './machines';
import { LAB_PROMETHEUS_URL, startPrometheus } from './prometheus';
import { createLabNetwork, createTap } from './network';
import { createRackNetwork, RACK_SUBNET_ID } from './rack';

const run = promisify(execFile);
const EXAMPLE = path.join(REPO, 'examples/lab');
const FORWARD = path.join(REPO, 'cli/lab/forward.ts');
const REDFISH_BMC = path.join(REPO, 'cli/lab/redfish-bmc.ts');
const VAQUERO = path.join(REPO, 'bin/vaquero.mjs');
// node --import tsx rather than the tsx launcher, whose script runs in a child that a kill of the
// pid in the pid file would leave behind.
const TSX = [process.execPath, '--import', import.meta.resolve('tsx')];

async function git(dir: string, args: string[]): Promise<void> {
  await run('git', [
    '-C',
    dir,
    '-c',
    'user.name=vaquero lab',
    '-c',
    'user.email=lab@vaquero.invalid',
    ...args,
  ]);
}

/** The user's copy of examples/lab, a git repository: standalone applies each commit to it. */
async function ensureSot(o: LabOptions, io: Io): Promise<void> {
  const sot = path.join(o.state, 'sot');
  if (existsSync(sot)) return;
  await cp(EXAMPLE, sot, { recursive: true });
  await git(sot, ['init', '-q', '-b', 'main']);
  await git(sot, ['add', '-A']);
  await git(sot, ['commit', '-q', '-m', 'lab: initial SoT from examples/lab']);
  io.out(`lab: SoT copied to ${sot} (a git repository: commit changes there to roll them out)\n`);
}

function labCache(): string {
  return path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'lab');
}

/** The SoT and the lab kernel the machines boot, in the state directory. */
async function prepareState(o: LabOptions, io: Io, cache: string): Promise<void> {
  for (const f of ['vmlinuz', 'initramfs', 'tftp/ipxe.efi'])
    if (!existsSync(path.join(cache, f)))
      throw new CliError(`${cache}/${f} missing: run bash scripts/install-lab.sh`);
  await mkdir(o.state, { recursive: true });
  await ensureSot(o, io);
  await mkdir(path.join(o.state, 'files/lab'), { recursive: true });
  // Not over a running lab's copy: a machine may be downloading it.
  const images = (await readdir(path.join(cache, 'images')).catch(() => [])).filter((f) =>
    f.startsWith('lab-os-'),
  );
  await mkdir(path.join(o.state, 'files/images'), { recursive: true });
  const copies = [
    ...['vmlinuz', 'initramfs'].map((f) => [path.join(cache, f), path.join(o.state, 'files/lab', f)]),
    // The lab OS disk images a boot profile's `image` deploys (docs/images.md).
    ...images.map((f) => [path.join(cache, 'images', f), path.join(o.state, 'files/images', f)]),
  ];
  for (const [from = '', to = ''] of copies) {
    const [src, dst] = [await stat(from), await stat(to).catch(() => undefined)];
    // The images of both versions have one size: a rebuilt one is newer than its copy.
    if (dst?.size !== src.size || dst.mtimeMs < src.mtimeMs) await cp(from, to);
  }
}

/** The network, each machine's tap and directory, and its BMC. */
async function startMachines(o: LabOptions, machines: LabMachine[]): Promise<void> {
  const { names } = o;
  await createLabNetwork(
    names,
    machines.flatMap((m) => (m.bmc ? [m.bmc.address] : [])),
  );
  const rack = await createRackNetwork(names);
  for (const m of machines) {
    const vmDir = path.join(o.state, 'vms', m.name);
    const bridge = m.subnet === RACK_SUBNET_ID ? rack.rackBridge : names.bridge;
    await prepareVm(m, vmDir, await createTap(names, m.index, bridge));
    if (!m.bmc) continue;
    const argv =
      m.bmc.kind === 'ipmi'
        ? await prepareBmc(m, vmDir, BMC_PASSWORD)
        : [...TSX, REDFISH_BMC, m.bmc.address, String(m.bmc.port), vmDir, m.name, m.bmc.username];
    const env = { ...process.env, VAQUERO_LAB_BMC_PASSWORD: BMC_PASSWORD };
    await daemon(o, `bmc-${m.name}`, ['ip', 'netns', 'exec', names.labNs, ...argv], env);
  }
}

/** Standalone (its own Temporal and the server) in the agent namespace; returns the agents' environment. */
async function startVaquero(o: LabOptions): Promise<NodeJS.ProcessEnv> {
  const { names } = o;
  // The lab's own Temporal runs in its namespace: a TEMPORAL_ADDRESS of the caller does not apply.
  const env: NodeJS.ProcessEnv = { ...process.env, VAQUERO_LAB_BMC_PASSWORD: BMC_PASSWORD };
  delete env.TEMPORAL_ADDRESS;
  const inAgentNs = ['ip', 'netns', 'exec', names.agentNs, process.execPath, VAQUERO];
  const standalone = [
    ...[...inAgentNs, 'standalone', '--sot', path.join(o.state, 'sot'), '--site', SITE, '--no-agent'],
    ...['--state', path.join(o.state, 'standalone')],
  ];
  await daemon(o, 'standalone', standalone, env);
  await waitForLog(o, 'standalone', 'standalone: site');
  return env;
}

/** Temporal's UI and gRPC on 127.0.0.1, through Unix sockets into the agent namespace. */
async function startForwarders(o: LabOptions): Promise<void> {
  const sock = (what: string) => path.join(o.state, 'run', `${what}.sock`);
  const nsExec = ['ip', 'netns', 'exec', o.names.agentNs, ...TSX, FORWARD];
  await daemon(o, 'fwd-ui-ns', [...nsExec, `unix:${sock('ui')}`, 'tcp:127.0.0.1:8233']);
  await daemon(o, 'fwd-grpc-ns', [...nsExec, `unix:${sock('grpc')}`, 'tcp:127.0.0.1:7233']);
  await daemon(o, 'fwd-ui', [...TSX, FORWARD, `tcp:127.0.0.1:${o.uiPort}`, `unix:${sock('ui')}`]);
  await daemon(o, 'fwd-grpc', [...TSX, FORWARD, `tcp:127.0.0.1:${o.temporalPort}`, `unix:${sock('grpc')}`]);
}

export async function labUp(o: LabOptions, io: Io): Promise<void> {
  const cache = labCache();
  await prepareState(o, io, cache);
  const machines = await labMachines(o);
  await startMachines(o, machines);
  await startRackDaemons(o);
  await startPrometheus(o, machines, io);
  const env = await startVaquero(o);
  await startForwarders(o);
  await startAgents(o, cache, env);
  io.out(
    [
      `lab: agents lab-agent (10.77.0.1) and lab-agent-b (10.77.0.250); rack lab-rack (10.78.0.0/24) behind dhcrelay`,
      `lab: ${machines.length} machines (the first rollout powers them on), BMCs ${machines.map((m) => m.bmc?.address).join(', ')} (admin/${BMC_PASSWORD})`,
      `lab: Temporal UI  http://127.0.0.1:${o.uiPort}`,
      `lab: Prometheus   ${LAB_PROMETHEUS_URL} in namespace ${o.names.agentNs}, scraping each machine's /metrics`,
      `lab: follow rollouts: TEMPORAL_ADDRESS=127.0.0.1:${o.temporalPort} npx vaquero rollout watch`,
      `lab: change the SoT:  edit ${path.join(o.state, 'sot')} and git commit (applied within seconds)`,
      `lab: logs in ${path.join(o.state, 'run')}; serial consoles in ${path.join(o.state, 'vms/<name>/serial.log')}`,
      '',
    ].join('\n'),
  );
}

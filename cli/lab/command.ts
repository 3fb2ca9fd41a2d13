// `vaquero lab up|down|status`: the virtual lab of docs/lab.md. Machines and BMCs live in the
// `vql-lab` namespace, `vaquero standalone --no-agent` (Temporal dev server, server) and the site's
// `vaquero agent` (its own process, reading standalone's model store) in `vql-agent`;
// nothing is added to the root namespace but two forwarders on 127.0.0.1 (Temporal UI and gRPC)
// that reach the agent namespace through Unix sockets in the state directory.
import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { validateSot } from '../../sot/validate';
import { stopOrphanRadvd } from '../../agent/ra';
import { BMC_PASSWORD, prepareBmc } from './bmc';
import { chassis, killVm, machinesFromModel, powerCommands, prepareVm, type LabMachine } from './machines';
import {
  createLabNetwork,
  createTap,
  deleteLabNetwork,
  labNames,
  namespaceExists,
  type LabNames,
} from './network';
import { CliError, type Io } from '../io';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = path.join(REPO, 'examples/lab');
const FORWARD = path.join(REPO, 'cli/lab/forward.ts');
// node --import tsx rather than the tsx launcher, whose script runs in a child that a kill of the
// pid in the pid file would leave behind.
const TSX = [process.execPath, '--import', import.meta.resolve('tsx')];
const SITE = 'lab';

const USAGE = `usage: vaquero lab up|down|status [--state <dir>] [--ui-port 8233] [--temporal-port 7234] [--purge]
                                  [--prefix vql]  (namespaces <prefix>-agent, <prefix>-lab; tests use their own)

  up      namespaces vql-agent/vql-lab, one ipmi_sim BMC per machine of <state>/sot (a copy of
          examples/lab: edit and commit there), machines powered off, then vaquero standalone and
          the agent; run again, it starts only what is not running (a killed agent, say)
  down    stops everything and deletes the namespaces (--purge also removes the state directory)
  status  what runs, each machine's power state and BMC power commands
`;

interface LabOptions {
  names: LabNames;
  state: string;
  uiPort: number;
  temporalPort: number;
  purge: boolean;
}

const pidFile = (o: LabOptions, name: string) => path.join(o.state, 'run', `${name}.pid`);
const logFile = (o: LabOptions, name: string) => path.join(o.state, 'run', `${name}.log`);

async function alive(o: LabOptions, name: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile(o, name), 'utf8').catch(() => '')).trim());
  if (!pid) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return /\nState:\tZ/.test(status) ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** Starts a detached process (own session, output to <state>/run/<name>.log) unless it runs. */
async function daemon(
  o: LabOptions,
  name: string,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  if (await alive(o, name)) return false;
  await mkdir(path.join(o.state, 'run'), { recursive: true });
  const log = openSync(logFile(o, name), 'a');
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env, cwd: o.state });
  child.unref();
  await writeFile(pidFile(o, name), `${child.pid}\n`);
  return true;
}

async function stopDaemon(o: LabOptions, name: string, waitMs = 15_000): Promise<void> {
  const pid = await alive(o, name);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    while ((await alive(o, name)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (await alive(o, name)) process.kill(pid, 'SIGKILL');
  }
  await rm(pidFile(o, name), { force: true });
}

async function labMachines(o: LabOptions): Promise<LabMachine[]> {
  const sot = path.join(o.state, 'sot');
  const result = await validateSot(sot);
  if (!result.model) throw new CliError(`${sot} is not a valid SoT: vaquero validate ${sot}`);
  return machinesFromModel(result.model, SITE);
}

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

async function up(o: LabOptions, io: Io): Promise<void> {
  const { names } = o;
  const cache = labCache();
  for (const f of ['vmlinuz', 'initramfs', 'tftp/ipxe.efi'])
    if (!existsSync(path.join(cache, f)))
      throw new CliError(`${cache}/${f} missing: run bash scripts/install-lab.sh`);
  await mkdir(o.state, { recursive: true });
  await ensureSot(o, io);
  await mkdir(path.join(o.state, 'files/lab'), { recursive: true });
  // Not over a running lab's copy: a machine may be downloading it.
  for (const f of ['vmlinuz', 'initramfs']) {
    const [from, to] = [path.join(cache, f), path.join(o.state, 'files/lab', f)];
    if ((await stat(to).catch(() => undefined))?.size !== (await stat(from)).size) await cp(from, to);
  }

  const machines = await labMachines(o);
  await createLabNetwork(
    names,
    machines.flatMap((m) => (m.bmc ? [m.bmc.address] : [])),
  );
  for (const m of machines) {
    const vmDir = path.join(o.state, 'vms', m.name);
    await prepareVm(m, vmDir, await createTap(names, m.index));
    if (!m.bmc) continue;
    const sim = await prepareBmc(m, vmDir, BMC_PASSWORD);
    await daemon(o, `bmc-${m.name}`, ['ip', 'netns', 'exec', names.labNs, ...sim]);
  }
  // The lab's own Temporal runs in its namespace: a TEMPORAL_ADDRESS of the caller does not apply.
  const env: NodeJS.ProcessEnv = { ...process.env, VAQUERO_LAB_BMC_PASSWORD: BMC_PASSWORD };
  delete env.TEMPORAL_ADDRESS;
  const standalone = [
    ...[
      'ip',
      'netns',
      'exec',
      names.agentNs,
      process.execPath,
      path.join(REPO, 'bin/vaquero.mjs'),
      'standalone',
    ],
    ...['--sot', path.join(o.state, 'sot'), '--site', SITE, '--no-agent'],
    ...['--state', path.join(o.state, 'standalone')],
  ];
  await daemon(o, 'standalone', standalone, env);
  await waitForLog(o, 'standalone', 'standalone: site');
  // The agent is a process of its own, as at a real site: killed, `lab up` starts it again, and it
  // picks up its journaled boot events and in-doubt power cycles from its state directory.
  const agent = [
    ...['ip', 'netns', 'exec', names.agentNs, process.execPath, path.join(REPO, 'bin/vaquero.mjs'), 'agent'],
    ...['--site', SITE, '--state-dir', path.join(o.state, 'agent'), '--temporal-address', '127.0.0.1:7233'],
    ...['--model-dir', path.join(o.state, 'standalone/store'), '--model-poll-ms', '1000'],
    ...['--boot-interface', names.agentIf, '--router-advertisements'],
    ...['--tftp-root', path.join(cache, 'tftp'), '--files-dir', path.join(o.state, 'files')],
  ];
  const agentLogFrom = await logSize(o, 'agent');
  if (await daemon(o, 'agent', agent, env))
    await waitForLog(o, 'agent', '"msg":"agent started"', agentLogFrom);
  const sock = (what: string) => path.join(o.state, 'run', `${what}.sock`);
  const nsExec = ['ip', 'netns', 'exec', names.agentNs, ...TSX, FORWARD];
  await daemon(o, 'fwd-ui-ns', [...nsExec, `unix:${sock('ui')}`, 'tcp:127.0.0.1:8233']);
  await daemon(o, 'fwd-grpc-ns', [...nsExec, `unix:${sock('grpc')}`, 'tcp:127.0.0.1:7233']);
  await daemon(o, 'fwd-ui', [...TSX, FORWARD, `tcp:127.0.0.1:${o.uiPort}`, `unix:${sock('ui')}`]);
  await daemon(o, 'fwd-grpc', [...TSX, FORWARD, `tcp:127.0.0.1:${o.temporalPort}`, `unix:${sock('grpc')}`]);
  io.out(
    [
      `lab: ${machines.length} machines (the first rollout powers them on), BMCs ${machines.map((m) => m.bmc?.address).join(', ')} (admin/${BMC_PASSWORD})`,
      `lab: Temporal UI  http://127.0.0.1:${o.uiPort}`,
      `lab: follow rollouts: TEMPORAL_ADDRESS=127.0.0.1:${o.temporalPort} npx vaquero rollout watch`,
      `lab: change the SoT:  edit ${path.join(o.state, 'sot')} and git commit (applied within seconds)`,
      `lab: logs in ${path.join(o.state, 'run')}; serial consoles in ${path.join(o.state, 'vms/<name>/serial.log')}`,
      '',
    ].join('\n'),
  );
}

const logSize = async (o: LabOptions, name: string) =>
  (await stat(logFile(o, name)).catch(() => undefined))?.size ?? 0;

/** Waits until a daemon's log, from byte `from`, says `needle`; fails with its tail if it stops. */
async function waitForLog(o: LabOptions, name: string, needle: string, from = 0): Promise<void> {
  const log = logFile(o, name);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = (await readFile(log).catch(() => Buffer.alloc(0))).subarray(from).toString();
    if (text.includes(needle)) return;
    if (!(await alive(o, name)))
      throw new CliError(`${name} stopped; see ${log}:\n${text.split('\n').slice(-15).join('\n')}`);
    if (Date.now() > deadline) throw new CliError(`${name} did not start within 120 s; see ${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function down(o: LabOptions, io: Io): Promise<void> {
  const { names } = o;
  for (const name of ['fwd-ui', 'fwd-grpc', 'fwd-ui-ns', 'fwd-grpc-ns', 'agent', 'standalone'])
    await stopDaemon(o, name);
  // An agent that was killed left its radvd behind.
  await stopOrphanRadvd(path.join(o.state, 'agent'));
  const runDir = path.join(o.state, 'run');
  const bmcs = (await readdir(runDir).catch(() => [] as string[])).filter((f) => /^bmc-.*\.pid$/.test(f));
  for (const f of bmcs) await stopDaemon(o, f.replace(/\.pid$/, ''), 2000);
  const vms = await readdir(path.join(o.state, 'vms')).catch(() => [] as string[]);
  for (const vm of vms) await killVm(path.join(o.state, 'vms', vm));
  await deleteLabNetwork(names);
  if (o.purge) await rm(o.state, { recursive: true, force: true });
  io.out(
    `lab: down${o.purge ? `, ${o.state} removed` : ` (state kept in ${o.state}; --purge removes it)`}\n`,
  );
}

async function status(o: LabOptions, io: Io): Promise<number> {
  const { names } = o;
  const lines: string[] = [];
  for (const ns of [names.agentNs, names.labNs])
    lines.push(`namespace ${ns}: ${(await namespaceExists(ns)) ? 'present' : 'absent'}`);
  for (const name of ['standalone', 'agent', 'fwd-ui', 'fwd-grpc']) {
    const pid = await alive(o, name);
    lines.push(`${name}: ${pid ? `running (pid ${pid})` : 'stopped'}`);
  }
  const machines = existsSync(path.join(o.state, 'sot')) ? await labMachines(o) : [];
  for (const m of machines) {
    const vmDir = path.join(o.state, 'vms', m.name);
    const power = (await namespaceExists(names.labNs))
      ? (await chassis(names.labNs, vmDir, ['get', 'power']).catch(() => '?')).trim()
      : 'power:?';
    const commands = await powerCommands(vmDir);
    const ons = commands.filter((c) => c === 'power 1').length;
    const bmc = (await alive(o, `bmc-${m.name}`)) ? 'up' : 'down';
    lines.push(
      `${m.name} ${m.firmware} ${m.mac} ${m.ipv4}: ${power}, BMC ${m.bmc?.address ?? '-'} ${bmc}, ${ons} power-ons`,
    );
  }
  io.out(`${lines.join('\n')}\n`);
  return (await alive(o, 'standalone')) && (await alive(o, 'agent')) ? 0 : 3;
}

export async function labCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      state: { type: 'string' },
      'ui-port': { type: 'string' },
      'temporal-port': { type: 'string' },
      purge: { type: 'boolean' },
      prefix: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub] = positionals;
  if (values.help || !sub) {
    if (values.help) io.out(USAGE);
    else io.err(USAGE);
    return values.help ? 0 : 2;
  }
  if (process.getuid?.() !== 0) throw new CliError('the lab needs root (network namespaces, taps)');
  let names: LabNames;
  try {
    names = labNames(values.prefix ?? 'vql');
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const o: LabOptions = {
    names,
    state: path.resolve(values.state ?? '.vaquero/lab'),
    uiPort: Number(values['ui-port'] ?? 8233),
    temporalPort: Number(values['temporal-port'] ?? 7234),
    purge: values.purge ?? false,
  };
  if (sub === 'up') await up(o, io);
  else if (sub === 'down') await down(o, io);
  else if (sub === 'status') return status(o, io);
  else throw new CliError(`unknown lab command "${sub}"\n${USAGE}`);
  return 0;
}

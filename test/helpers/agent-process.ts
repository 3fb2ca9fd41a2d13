// Real `vaquero agent` processes of one site with a real `vaquero server` (its agent API and its
// worker) on the Temporal dev server, for the tests of redundant agents (issue 13): the SoT in a git
// repository the server applies from, an agent token per agent, and each agent's boot HTTP port.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './etcd';
import { startServerProcess, type ServerProcess } from './server-process';
import { temporalAddress } from './temporal';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin/vaquero.mjs');
export const API_TOKEN = 'vaq_api_shared_state_test';
export const AGENT_TOKEN = 'vaq_agent_sim1_shared_state';

export interface AgentProcess {
  name: string;
  stateDir: string;
  httpPort: number;
  child: ChildProcess;
  output(): string;
  /** SIGKILL of its process group (its BMC scripts die with it). */
  kill(): Promise<void>;
  /** SIGTERM, as a service manager stops it for an upgrade. */
  stop(): Promise<void>;
}

export interface AgentOptions {
  simTimeScale?: number;
  simPowerLatencyMs?: number;
  inDoubtGraceMs?: number;
}

export interface SiteRig {
  dir: string;
  repo: string;
  server: ServerProcess;
  namespace: string;
  /** Commits the SoT and asks the server to apply it (POST /api/v1/apply); returns the SHA. */
  apply(message: string): Promise<string>;
  startAgent(name: string, options?: AgentOptions): Promise<AgentProcess>;
  /** Every agent started, for the clean-up. */
  agentsOf(): AgentProcess[];
}

/** The sim SoT with site sim1 served by the named agents (proxy DHCP: no lease-address check). */
export async function writeSimSot(repo: string, agents: { name: string; port: number }[]): Promise<void> {
  await cp(path.join(repoRoot, 'test/fixtures/sot-sim'), repo, { recursive: true });
  const site = path.join(repo, 'sites/sim1/site.yaml');
  const text = await readFile(site, 'utf8');
  const list = agents
    .map((a) => `  - name: ${a.name}\n    dhcp_mode: proxy\n    asset_url: http://127.0.0.1:${a.port}`)
    .join('\n');
  await writeFile(site, text.replace(/agents:\n(?: {2}.*\n| {4}.*\n)+/, `agents:\n${list}\n`));
}

export async function startSiteRig(
  dir: string,
  agentNames: string[],
  sot: (repo: string, agents: { name: string; port: number }[]) => Promise<void> = writeSimSot,
): Promise<SiteRig> {
  const repo = path.join(dir, 'repo');
  await mkdir(repo, { recursive: true });
  const ports = new Map<string, number>();
  for (const name of agentNames) ports.set(name, await freePort());
  await sot(
    repo,
    agentNames.map((name) => ({ name, port: ports.get(name) ?? 0 })),
  );
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  const server = await startServerProcess(
    dir,
    [
      `sources: [{ name: sot, kind: git, repo: '${repo}', webhook_secret: { env: VAQ_T_HOOK } }]`,
      'api: { tokens: [{ name: ops, token: { env: VAQ_T_API } }] }',
      'agents: { tokens: [{ site: sim1, name: sim1-agents, token: { env: VAQ_T_AGENT } }] }',
    ],
    { VAQ_T_HOOK: 'hook-secret', VAQ_T_API: API_TOKEN, VAQ_T_AGENT: AGENT_TOKEN },
  );
  const tokenFile = path.join(dir, 'agent.token');
  await writeFile(tokenFile, `${AGENT_TOKEN}\n`);
  const namespace = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
  const agents: AgentProcess[] = [];

  const git = (...args: string[]) =>
    execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.net', ...args])
      .toString()
      .trim();
  return {
    dir,
    repo,
    server,
    namespace,
    agentsOf: () => agents,
    async apply(message) {
      git('add', '-A');
      git('commit', '-q', '--allow-empty', '-m', message);
      const sha = git('rev-parse', 'HEAD');
      const res = await fetch(`${server.url}/api/v1/apply`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ commit: sha }),
      });
      if (res.status !== 202 && res.status !== 200)
        throw new Error(`apply answered ${res.status}: ${await res.text()}`);
      return sha;
    },
    async startAgent(name, options = {}) {
      const stateDir = path.join(dir, `agent-${name}`);
      const httpPort = ports.get(name) ?? (await freePort());
      const args = [bin, 'agent', '--site', 'sim1', '--agent-name', name, '--state-dir', stateDir];
      args.push('--temporal-address', temporalAddress(), '--namespace', namespace);
      args.push('--server', server.url, '--insecure-http', '--token-file', tokenFile);
      args.push('--no-dhcp', '--no-tftp', '--http-host', '127.0.0.1', '--http-port', String(httpPort));
      args.push('--model-poll-ms', '500', '--heartbeat-ms', '1000');
      args.push('--sim-time-scale', String(options.simTimeScale ?? 0.005));
      args.push('--sim-power-latency-ms', String(options.simPowerLatencyMs ?? 0));
      args.push('--in-doubt-grace-ms', String(options.inDoubtGraceMs ?? 20_000));
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let out = '';
      child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const signal = async (sig: NodeJS.Signals) => {
        if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(-child.pid, sig);
        await exited;
      };
      const agent: AgentProcess = {
        name,
        stateDir,
        httpPort,
        child,
        output: () => out,
        kill: () => signal('SIGKILL'),
        stop: () => signal('SIGTERM'),
      };
      agents.push(agent);
      for (let i = 0; !out.includes('"agent started"'); i++) {
        if (child.exitCode !== null || i > 600) throw new Error(`agent ${name} did not start:\n${out}`);
        await sleep(50);
      }
      return agent;
    },
  };
}

/** The MACs in an agent's netboot.json cache now ([] while it is being replaced or absent). */
export async function cachedArms(agent: AgentProcess): Promise<{ mac: string; workflowId: string }[]> {
  try {
    return JSON.parse(await readFile(path.join(agent.stateDir, 'netboot.json'), 'utf8')) as {
      mac: string;
      workflowId: string;
    }[];
  } catch {
    return [];
  }
}

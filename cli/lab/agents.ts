// The lab site's two agents (`lab-agent` in the agent namespace, `lab-agent-b` in its own) and the
// relayed rack's daemons. Both agents take the site's model, arms and power claims from standalone's
// agent API, so either one may arm, power-cycle and serve any host; each is a process of its own that
// a test may kill, and `lab up` run again starts the one that is missing.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { radvdConfig } from '../../agent/ra';
import { daemon, logSize, waitForLog } from './daemons';
import { REPO, SITE, type LabOptions } from './lab-state';
import { dhcrelayArgv, RACK_PREFIX6, rackNames } from './rack';

const VAQUERO = path.join(REPO, 'bin/vaquero.mjs');
const FORWARD = path.join(REPO, 'cli/lab/forward.ts');
const TSX = [process.execPath, '--import', import.meta.resolve('tsx')];
/** standalone's API port inside the agent namespace (its default). */
const API_PORT = 8081;

export interface LabAgent {
  /** The daemon's name: its pid and log files under <state>/run. */
  daemon: string;
  /** Its entry in the site's `agents` (examples/lab/sites/lab/site.yaml). */
  name: string;
  ns: string;
  bootInterface: string;
  stateDir: string;
}

export function labAgents(o: LabOptions): LabAgent[] {
  const r = rackNames(o.names);
  return [
    {
      daemon: 'agent',
      name: 'lab-agent',
      ns: o.names.agentNs,
      bootInterface: o.names.agentIf,
      stateDir: 'agent',
    },
    {
      daemon: 'agent-b',
      name: 'lab-agent-b',
      ns: r.agentBNs,
      bootInterface: r.agentBIf,
      stateDir: 'agent-b',
    },
  ].map((a) => ({ ...a, stateDir: path.join(o.state, a.stateDir) }));
}

/** Daemons of the rack and of agent B's reach to standalone, in the order `lab down` stops them. */
export const RACK_DAEMONS = ['fwd-b-api', 'fwd-b-grpc', 'fwd-api-ns', 'dhcrelay', 'radvd-rack'];

/**
 * Agent B reaches Temporal and the server at 127.0.0.1 of its own namespace, through Unix sockets
 * into the agent namespace, as the root namespace does (fwd-grpc-ns must run first).
 */
async function startAgentBForwarders(o: LabOptions): Promise<void> {
  const sock = (what: string) => path.join(o.state, 'run', `${what}.sock`);
  const inNs = (ns: string) => ['ip', 'netns', 'exec', ns, ...TSX, FORWARD];
  const { agentBNs } = rackNames(o.names);
  await daemon(o, 'fwd-api-ns', [
    ...inNs(o.names.agentNs),
    `unix:${sock('api')}`,
    `tcp:127.0.0.1:${API_PORT}`,
  ]);
  await daemon(o, 'fwd-b-grpc', [...inNs(agentBNs), 'tcp:127.0.0.1:7233', `unix:${sock('grpc')}`]);
  await daemon(o, 'fwd-b-api', [...inNs(agentBNs), `tcp:127.0.0.1:${API_PORT}`, `unix:${sock('api')}`]);
}

/** dhcrelay between the rack and the lab bridge, and router advertisements on the rack. */
export async function startRackDaemons(o: LabOptions): Promise<void> {
  const r = rackNames(o.names);
  const run = path.join(o.state, 'run');
  await daemon(o, 'dhcrelay', dhcrelayArgv(r, path.join(run, 'dhcrelay.own.pid')));
  const conf = path.join(run, 'radvd-rack.conf');
  await writeFile(conf, radvdConfig(r.relayDown, RACK_PREFIX6));
  await daemon(o, 'radvd-rack', [
    ...['ip', 'netns', 'exec', r.relayNs, 'radvd', '--nodaemon', '--config', conf],
    ...['--pidfile', path.join(run, 'radvd-rack.own.pid'), '--logmethod', 'stderr'],
  ]);
}

/**
 * The argv of one agent: the site's state from standalone's agent API, DHCP on its own interface.
 * It enters its namespace's network only (`nsenter --net`), not `ip netns exec`, whose fresh /sys
 * hides /sys/fs/cgroup: podman's runtime needs the host's cgroups to start a container job (docs/lab.md).
 * Nothing of the agent reads /sys; interfaces, sockets and /proc/sys/net (radvd) follow the netns.
 */
function agentArgv(o: LabOptions, agent: LabAgent, cache: string): string[] {
  return [
    ...['nsenter', `--net=/run/netns/${agent.ns}`, '--', process.execPath, VAQUERO, 'agent', '--site', SITE],
    ...['--agent-name', agent.name, '--state-dir', agent.stateDir],
    ...['--temporal-address', '127.0.0.1:7233', '--server', `http://127.0.0.1:${API_PORT}`],
    ...['--insecure-http', '--token-file', path.join(o.state, 'standalone/agent-token')],
    ...['--model-poll-ms', '1000', '--heartbeat-ms', '2000', '--in-doubt-grace-ms', '20000'],
    ...['--boot-interface', agent.bootInterface, '--router-advertisements'],
    ...['--tftp-root', path.join(cache, 'tftp'), '--files-dir', path.join(o.state, 'files')],
  ];
}

/** Starts whichever agent is not running and waits until it says it started. */
export async function startAgents(o: LabOptions, cache: string, env: NodeJS.ProcessEnv): Promise<void> {
  await startAgentBForwarders(o);
  // What scripts/install-job-image.sh wrote where podman's defaults cannot run a container job.
  const podmanConf = path.join(cache, '../podman/containers.conf');
  const agentEnv =
    env.CONTAINERS_CONF === undefined && existsSync(podmanConf)
      ? { ...env, CONTAINERS_CONF: podmanConf }
      : env;
  for (const agent of labAgents(o)) {
    const from = await logSize(o, agent.daemon);
    if (await daemon(o, agent.daemon, agentArgv(o, agent, cache), agentEnv))
      await waitForLog(o, agent.daemon, '"msg":"agent started"', from);
  }
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const composeFile = `${root}docker-compose.yml`;

interface Service {
  image?: string;
  build?: unknown;
  ports?: (string | { target: number; published?: string | number })[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: unknown };
  network_mode?: string;
  cap_add?: string[];
  command?: string[] | string;
}

const compose = parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, Service> };
const { services } = compose;

function service(name: string): Service {
  const found = services[name];
  assert.ok(found, `service ${name} is defined`);
  return found;
}

/** Published host ports of a service, from short ("[ip:]host:container") or long syntax. */
function publishedPorts(svc: Service): { host: number; container: number }[] {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'string') {
      const parts = port.split('/')[0]!.split(':');
      return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
    }
    return { host: Number(port.published), container: port.target };
  });
}

function dependsOnHealthy(svc: Service, target: string): boolean {
  const deps = svc.depends_on;
  return !!deps && !Array.isArray(deps) && deps[target]?.condition === 'service_healthy';
}

test('defines the six services', () => {
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'etcd', 'vaquero-server', 'vaquero-agent']) {
    service(name);
  }
});

test('pins every pulled image to a tag other than latest', () => {
  for (const [name, svc] of Object.entries(services)) {
    if (svc.build) continue;
    assert.ok(svc.image, `${name} has an image`);
    const tag = /:([^/:]+)$/.exec(svc.image)?.[1];
    assert.ok(tag, `${name} image ${svc.image} has a tag`);
    assert.notEqual(tag, 'latest', `${name} image is not :latest`);
  }
  assert.match(service('temporal').image!, /^temporalio\/auto-setup:\d+\.\d+\.\d+$/);
  assert.match(service('etcd').image!, /^quay\.io\/coreos\/etcd:v3\.5\.\d+$/);
});

test('publishes Temporal, its UI, etcd and the Vaquero API', () => {
  assert.ok(publishedPorts(service('temporal')).some((p) => p.host === 7233 && p.container === 7233));
  assert.ok(publishedPorts(service('temporal-ui')).some((p) => [8233, 8080].includes(p.host)));
  assert.ok(publishedPorts(service('etcd')).some((p) => p.host === 2379 && p.container === 2379));
  assert.ok(publishedPorts(service('vaquero-server')).some((p) => p.host === 8080));
});

test('starts services only once what they need is healthy', () => {
  assert.ok(dependsOnHealthy(service('temporal'), 'postgresql'));
  assert.ok(dependsOnHealthy(service('vaquero-server'), 'temporal'));
  assert.ok(dependsOnHealthy(service('vaquero-server'), 'etcd'));
  for (const [name, svc] of Object.entries(services)) {
    for (const [dep, { condition }] of Object.entries(
      Array.isArray(svc.depends_on) ? {} : (svc.depends_on ?? {}),
    )) {
      if (condition === 'service_healthy') {
        assert.ok(service(dep).healthcheck?.test, `${name} waits for ${dep}, which has a healthcheck`);
      }
    }
  }
});

test('gives the agent the host network and the capabilities DHCP needs', () => {
  const agent = service('vaquero-agent');
  assert.equal(agent.network_mode, 'host');
  assert.ok(agent.cap_add?.includes('NET_ADMIN'));
  assert.ok(agent.cap_add?.includes('NET_RAW'));
});

test('builds the server and agent from a Dockerfile whose entry point is bin/vaquero.mjs', () => {
  assert.ok(service('vaquero-server').build, 'vaquero-server is built');
  assert.ok(service('vaquero-agent').build, 'vaquero-agent is built');
  assert.equal(service('vaquero-agent').image, service('vaquero-server').image, 'one image for both roles');
  assert.deepEqual(service('vaquero-server').command, ['server']);
  assert.deepEqual(service('vaquero-agent').command, ['agent']);
  const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
  const entry = dockerfile.split('\n').filter((line) => /^\s*(ENTRYPOINT|CMD)\b/.test(line));
  assert.ok(
    entry.some((line) => line.includes('bin/vaquero.mjs')),
    'ENTRYPOINT or CMD runs bin/vaquero.mjs',
  );
});

test('is accepted by docker compose config', (t) => {
  const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('no docker CLI with the compose plugin on this machine');
    return;
  }
  const run = spawnSync('docker', ['compose', '-f', composeFile, 'config', '--quiet'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
});

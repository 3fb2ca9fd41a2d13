// The lab's Prometheus (Debian's package), for metric gates: in the agent namespace on 127.0.0.1:9090,
// beside the server that asks it, scraping every second each machine's /metrics on port 80 (the guest's
// vaquero_lab_guest_ok gauge, scripts/install-lab.sh) with the label host=<name>. Skipped with a note
// when Prometheus is not installed: the lab runs without it, only gates have nothing to ask.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Io } from '../io';
import { daemon, stopDaemon } from './daemons';
import type { LabOptions } from './lab-state';
import type { LabMachine } from './machines';

export const LAB_PROMETHEUS_URL = 'http://127.0.0.1:9090';
const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

/** The scrape configuration: one target per machine, labelled with its host name. */
export function prometheusConfig(machines: LabMachine[]): string {
  const targets = machines.map((m) => `      - { targets: ["${m.ipv4}:80"], labels: { host: "${m.name}" } }`);
  return [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: lab-guests',
    '    static_configs:',
    ...targets,
    '',
  ].join('\n');
}

export async function startPrometheus(o: LabOptions, machines: LabMachine[], io: Io): Promise<void> {
  if (!existsSync(PROMETHEUS_BIN)) {
    io.out(`lab: no ${PROMETHEUS_BIN} (apt-get install prometheus): metric gates have nothing to ask\n`);
    return;
  }
  const dir = path.join(o.state, 'prometheus');
  await mkdir(dir, { recursive: true });
  const config = path.join(dir, 'prometheus.yml');
  await writeFile(config, prometheusConfig(machines));
  await daemon(o, 'prometheus', [
    ...['ip', 'netns', 'exec', o.names.agentNs, PROMETHEUS_BIN],
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    '--storage.tsdb.retention.time=1d',
    `--web.listen-address=${new URL(LAB_PROMETHEUS_URL).host}`,
    '--log.level=warn',
  ]);
}

export const stopPrometheus = (o: LabOptions) => stopDaemon(o, 'prometheus');

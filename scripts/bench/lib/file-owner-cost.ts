// Evidence for a bottleneck found by bench-http (not a benchmark of its own): a GET of /files/<kernel>
// once made the asset app find the host it belongs to by rendering the armed stage of every armed
// host; now the boot token in the URL names it (agent/http/files.ts fileOwner), found by a scan of
// the armed entries without `?mac=`. In-process, no network: time per request, for N armed hosts.
//
//   npx tsx scripts/bench/file-owner-cost.ts [--hosts 1000] [--requests 50]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createAssetApp } from '../../../agent/http/app';
import { armAll, benchHosts, COMMIT, KERNEL_PATH, loadBenchModel, SITE, writeBenchSot } from './model';

const { values } = parseArgs({
  options: { hosts: { type: 'string', default: '1000' }, requests: { type: 'string', default: '50' } },
});
const hosts = benchHosts(Number(values.hosts));
const requests = Number(values.requests);
const dir = await mkdtemp(path.join(tmpdir(), 'h3-owner-'));
try {
  await writeBenchSot(path.join(dir, 'sot'), hosts);
  const model = await loadBenchModel(path.join(dir, 'sot'));
  await mkdir(path.join(dir, 'files', path.dirname(KERNEL_PATH)), { recursive: true });
  await writeFile(path.join(dir, 'files', KERNEL_PATH), Buffer.alloc(4096, 1));
  const armed = armAll(hosts);
  const app = createAssetApp({
    models: { forCommit: (c) => Promise.resolve(c === COMMIT ? model : undefined), current: () => model },
    site: SITE,
    netboot: {
      lookup: (mac) => Promise.resolve(armed.get(mac)),
      list: () => Promise.resolve([...armed.values()]),
    },
    events: { emit: () => undefined },
    filesDir: path.join(dir, 'files'),
    log: () => undefined,
  });
  const mac = hosts[0]?.mac ?? '';
  const token = armed.get(mac)?.token ?? '';
  const cases: [string, string, Record<string, string>][] = [
    [
      `/files/${KERNEL_PATH}, Range bytes=1-1 (no owner lookup)`,
      `/files/${KERNEL_PATH}`,
      { Range: 'bytes=1-1' },
    ],
    [
      `/files/${KERNEL_PATH}?mac=<mac>&token=<token> (one lookup)`,
      `/files/${KERNEL_PATH}?mac=${mac}&token=${token}`,
      {},
    ],
    [
      `/files/${KERNEL_PATH}?token=<token> (token scan over every armed host)`,
      `/files/${KERNEL_PATH}?token=${token}`,
      {},
    ],
    ['/ipxe/<mac>', `/ipxe/${mac.replaceAll(':', '-')}`, {}],
  ];
  console.log(`${hosts.length} armed hosts, ${requests} requests per case after 5 warm-up requests`);
  for (const [label, url, headers] of cases) {
    const once = async () => {
      const res = await app.request(url, { headers });
      await res.arrayBuffer();
      if (res.status >= 300) throw new Error(`${url}: HTTP ${res.status}`);
    };
    for (let i = 0; i < 5; i++) await once();
    const started = performance.now();
    for (let i = 0; i < requests; i++) await once();
    console.log(`${((performance.now() - started) / requests).toFixed(3).padStart(9)} ms  ${label}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

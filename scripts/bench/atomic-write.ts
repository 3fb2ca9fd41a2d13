// Durable writes benchmark (not a test): what the fsync of the file and its directory costs the one
// atomic-file helper, on the disk the state directory is on. Writes of a typical state file (a
// pointer, a netboot table, a model revision) and single-line appends, with and without fsync.
//
//   npx tsx scripts/bench/atomic-write.ts [--dir /var/lib/vaquero] [--seconds 2] [--bytes 2048]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  appendLine,
  appendLineSync,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../activities/store/atomic-file';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    seconds: { type: 'string', default: '2' },
    bytes: { type: 'string', default: '2048' },
  },
});
const seconds = Number(values.seconds);
const data = 'x'.repeat(Number(values.bytes));

async function rate(run: (i: number) => Promise<void> | void): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end) await run(n++);
  return n / seconds;
}

const dir = await mkdtemp(path.join(values.dir ?? tmpdir(), 'vq-bench-fsync-'));
try {
  const rows: [string, (fsync: boolean) => (i: number) => Promise<void> | void][] = [
    ['writeFileAtomic', (fsync) => () => writeFileAtomic(path.join(dir, 'state.json'), data, { fsync })],
    [
      'writeFileAtomicSync',
      (fsync) => () => writeFileAtomicSync(path.join(dir, 'state.json'), data, { fsync }),
    ],
    ['appendLine', (fsync) => () => appendLine(path.join(dir, 'a.log'), 'aa:bb:cc:dd:ee:ff dhcp', { fsync })],
    [
      'appendLineSync',
      (fsync) => () => appendLineSync(path.join(dir, 's.log'), 'aa:bb:cc:dd:ee:ff dhcp', { fsync }),
    ],
  ];
  console.log(`dir ${dir}, ${data.length}-byte files, ${seconds} s each`);
  console.log('call                  no fsync/s   fsync/s   ratio   ms per fsync write');
  for (const [name, make] of rows) {
    const fast = await rate(make(false));
    const slow = await rate(make(true));
    console.log(
      `${name.padEnd(20)} ${fast.toFixed(0).padStart(11)} ${slow.toFixed(0).padStart(9)} ` +
        `${(fast / slow).toFixed(1).padStart(7)} ${(1000 / slow).toFixed(2).padStart(12)}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

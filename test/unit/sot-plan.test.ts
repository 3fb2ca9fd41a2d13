import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Plan } from '../../schemas/plan';
import { exampleSot, runCli } from '../helpers/sot';

let work: string;

async function edit(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, to);
  assert.notEqual(next, text, `edit of ${file} changed nothing`);
  await writeFile(file, next);
}

/** Waves of one site as `index[c]: host,host` lines, the shape an operator reads. */
function waves(plan: Plan, site: string): string[] {
  const s = plan.sites.find((p) => p.site === site);
  assert.ok(s, `site ${site} in plan`);
  return s.waves.map((w) => `${w.index}${w.canary ? 'c' : ''}: ${w.hosts.map((h) => h.host).join(',')}`);
}

async function planJson(dir: string, from: string, cwd?: string): Promise<Plan> {
  const r = await runCli(['plan', dir, '--from', from, '--json'], cwd);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Plan;
}

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vaquero-plan-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('vaquero plan between two directories', () => {
  test('a new Flatcar release reprovisions control plane then workers, canary first, storage untouched', async () => {
    const next = path.join(work, 'flatcar');
    await cp(exampleSot, next, { recursive: true });
    await edit(path.join(next, 'os/flatcar.yaml'), /4081\.2\.0/g, '4152.2.1');
    const plan = await planJson(next, exampleSot);
    // control-plane: max_concurrent 1 -> one per wave; workers: batch min(3, 6 - min_standing 1) = 3.
    assert.deepEqual(waves(plan, 'fra1'), [
      '1c: cp-01',
      '2: cp-02',
      '3: cp-03',
      '4: wk-01,wk-02,wk-03',
      '5: wk-04,wk-05,wk-06',
    ]);
    assert.deepEqual(waves(plan, 'iad1'), [
      '1c: cp-01',
      '2: cp-02',
      '3: cp-03',
      '4: wk-01,wk-02,wk-03',
      '5: wk-04',
    ]);
    const fra1 = plan.sites.find((s) => s.site === 'fra1');
    assert.deepEqual(fra1?.waves[0]?.hosts[0]?.reasons, ['kernel changed', 'initrd changed']);
    assert.deepEqual(fra1?.unchanged, ['st-01', 'st-02']);
    assert.equal(fra1?.approval_required, true);

    const text = await runCli(['plan', next, '--from', exampleSot]);
    assert.equal(text.code, 0);
    assert.match(
      text.out,
      /site fra1 \(Frankfurt 1\): 9 to reprovision in 5 waves, 2 unchanged; canary 1, approval required/,
    );
    assert.match(text.out, /^ {2}1 canary +control-plane +cp-01 +kernel changed, initrd changed$/m);
    assert.match(text.out, /^ {2}4 +workers +wk-01 +kernel changed, initrd changed$/m);
  });

  test('a worker template change only touches workers, with the reason', async () => {
    const next = path.join(work, 'worker-template');
    await cp(exampleSot, next, { recursive: true });
    await edit(path.join(next, 'assets/ignition/worker.ign.j2'), '"mode": 384', '"mode": 256');
    const plan = await planJson(next, exampleSot);
    assert.deepEqual(waves(plan, 'fra1'), ['1c: wk-01', '2: wk-02,wk-03,wk-04', '3: wk-05,wk-06']);
    assert.deepEqual(plan.sites[0]?.waves[0]?.hosts[0]?.reasons, ['unattended config changed']);
  });

  test('new, moved, removed and never_provision hosts', async () => {
    const next = path.join(work, 'hosts');
    await cp(exampleSot, next, { recursive: true });
    const storage = path.join(next, 'sites/iad1/hosts/storage.yaml');
    await edit(storage, 'ipv4: 10.40.0.42', 'ipv4: 10.40.0.43');
    await edit(storage, 'name: st-01\n', 'name: st-01\nnever_provision: true\n');
    await edit(storage, 'ipv4: 10.40.0.41', 'ipv4: 10.40.0.44');
    const workers = path.join(next, 'sites/iad1/hosts/workers.yaml');
    const text = await readFile(workers, 'utf8');
    const docs = text.split('---\n');
    const wk05 = (docs[3] ?? '')
      .replaceAll('wk-04', 'wk-05')
      .replace('52:54:00:40:02:04', '52:54:00:40:02:05');
    const wk05b = wk05.replace('10.40.0.24', '10.40.0.25').replace(/uuid: .*\n/, '');
    await writeFile(workers, [...docs.slice(0, 3), wk05b].join('---\n'));
    const plan = await planJson(next, exampleSot);
    const iad1 = plan.sites.find((s) => s.site === 'iad1');
    assert.deepEqual(waves(plan, 'iad1'), ['1c: st-02', '2: wk-05']);
    assert.deepEqual(iad1?.waves[0]?.hosts[0]?.reasons, [
      'ipv4 10.40.0.42 -> 10.40.0.43',
      'stage 2 unattended config changed',
    ]);
    assert.deepEqual(iad1?.waves[1]?.hosts[0]?.reasons, ['new host']);
    assert.deepEqual(iad1?.removed, ['wk-04']);
    assert.deepEqual(
      iad1?.skipped.map((s) => s.host),
      ['st-01'],
    );
    assert.deepEqual(waves(plan, 'fra1'), []);
  });

  test('no change plans nothing', async () => {
    const r = await runCli(['plan', exampleSot, '--from', exampleSot]);
    assert.equal(r.code, 0);
    assert.match(r.out, /site fra1 \(Frankfurt 1\): nothing to reprovision \(11 unchanged\)/);
    assert.match(r.out, /site iad1 \(Ashburn 1\): nothing to reprovision \(9 unchanged\)/);
  });
});

describe('vaquero plan --from a git revision', () => {
  test('plans against HEAD~1 of the repository holding the SoT', async () => {
    const repo = path.join(work, 'repo');
    const sot = path.join(repo, 'infra/sot');
    await cp(exampleSot, sot, { recursive: true });
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.net', ...args], {
        stdio: 'pipe',
      });
    git('init', '-q', '-b', 'main');
    git('add', '.');
    git('commit', '-qm', 'first');
    await edit(path.join(sot, 'workflows/workers.yaml'), 'max_concurrent: 3', 'max_concurrent: 2');
    await edit(path.join(sot, 'os/flatcar.yaml'), 'flatcar.autologin', 'flatcar.autologin quiet');
    git('commit', '-qam', 'second');
    const plan = await planJson('sot', 'HEAD~1', path.join(repo, 'infra'));
    assert.deepEqual(waves(plan, 'iad1'), [
      '1c: cp-01',
      '2: cp-02',
      '3: cp-03',
      '4: wk-01,wk-02',
      '5: wk-03,wk-04',
    ]);
    assert.equal(plan.sites[0]?.waves[0]?.hosts[0]?.reasons.join(), 'cmdline changed');
  });

  test('an unknown revision or an invalid old revision is a clear error', async () => {
    const repo = path.join(work, 'repo');
    const bad = await runCli(['plan', path.join(repo, 'infra/sot'), '--from', 'no-such-ref']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.err,
      /--from no-such-ref: not a git revision of the repository holding .* \(nor a directory\)/,
    );
    const broken = path.join(work, 'broken-old');
    await cp(exampleSot, broken, { recursive: true });
    await edit(path.join(broken, 'workflows/workers.yaml'), 'max_concurrent: 3', 'max_concurrent: 0');
    const r = await runCli(['plan', exampleSot, '--from', broken]);
    assert.equal(r.code, 1);
    assert.match(r.err, /workflows\/workers\.yaml:5: rollout\.max_concurrent: .*\n/);
    assert.match(r.err, /--from .* is not a valid source of truth \(1 problems\)/);
  });
});

describe('vaquero preview', () => {
  test('prints the iPXE script and the rendered ignition of a host', async () => {
    const r = await runCli(['preview', '--mac', '52-54-00-20-02-02', exampleSot]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^# host fra1\/wk-02 \(52:54:00:20:02:02, 10\.20\.0\.22\), group workers, stage 1\/1/,
    );
    assert.match(
      r.out,
      /^kernel https:\/\/stable\.release\.flatcar-linux\.net\/.*\/flatcar_production_pxe\.vmlinuz initrd=flatcar_production_pxe_image\.cpio\.gz flatcar\.first_boot=1 ignition\.config\.url=http:\/\/10\.20\.0\.5:8080\/unattended\/52-54-00-20-02-02\/1\/BOOT-TOKEN /m,
    );
    const ignition = r.out.slice(r.out.indexOf('{'));
    const config = JSON.parse(ignition) as {
      ignition: { version: string };
      storage: { files: { path: string }[] };
    };
    assert.equal(config.ignition.version, '3.4.0');
    assert.ok(r.out.includes('data:,wk-02.fra1.example.net'));
    assert.match(
      r.out,
      /^# BOOT-TOKEN stands for the random token the agent makes each time it arms the host$/m,
    );
  });

  test('a second boot stage, an unknown MAC and a stage out of range', async () => {
    const st = await runCli(['preview', '--mac', '52:54:00:40:03:02', exampleSot, '--stage', '2']);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /^#cloud-config\n/m);
    assert.match(st.out, /addresses: \[10\.40\.0\.42\/24\]/);
    const unknown = await runCli(['preview', '--mac', '52:54:00:99:99:99', exampleSot]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.err, `vaquero preview: no host in ${exampleSot} has MAC 52:54:00:99:99:99\n`);
    const range = await runCli(['preview', '--mac', '52:54:00:40:03:02', exampleSot, '--stage', '3']);
    assert.equal(range.err, 'vaquero preview: --stage 3: host st-02 has boot stages 1 to 2\n');
  });
});

// A boot profile's `image`: the forms the SoT accepts, and what the deploy ramdisk is handed on its
// kernel command line (the bad forms are the broken fixture image-bad-forms, run by sot-validate).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { renderStage } from '../../sot/boot-chain';
import { validateSot } from '../../sot/validate';
import { ImageSchema } from '../../schemas/image';
import { own } from '../../schemas/common';
import { materialize, removeSot, sotMin } from '../helpers/sot';

const SHA256 = `sha256:${'ab'.repeat(32)}`;

test('the image forms the SoT accepts', () => {
  const good = [
    { url: '/files/images/os-2.img', format: 'raw', checksum: SHA256, disk: '/dev/vda' },
    { url: '/cdn/os/os.img.gz', format: 'raw+gzip', checksum: `sha512:${'0f'.repeat(64)}`, disk: '/dev/sdb' },
    { url: '/files/os.img.zst', format: 'raw+zstd', checksum: SHA256, disk: '/dev/nvme0n1' },
    { url: '/files/a.img', format: 'raw', checksum: SHA256, disk: '/dev/disk/by-path/pci-0000:00:04.0' },
    { url: '/files/a.img', format: 'raw', checksum: SHA256, disk: 'serial:QM00001' },
  ];
  for (const image of good) assert.ok(ImageSchema.safeParse(image).success, JSON.stringify(image));
  const bad = { url: '/files/a.img', format: 'raw', checksum: SHA256, disk: '/dev/vda', size: 1 };
  assert.equal(ImageSchema.safeParse(bad).success, false, 'an unknown key is refused');
  // The agent's routes refuse `.` and `..` segments: such a URL would validate and never be served.
  for (const url of ['/cdn/./os.img', '/files/../etc/passwd', '/files/a/./b.img'])
    assert.equal(ImageSchema.safeParse({ ...good[0], url }).success, false, url);
});

test('a stage with an image hands the deploy ramdisk the image, checksum, disk and report URLs', async (t) => {
  const dir = await materialize(sotMin);
  t.after(() => removeSot(dir));
  const image = `image:\n  url: /files/images/os-2.img.zst\n  format: raw+zstd\n  checksum: ${SHA256}\n  disk: /dev/vda\n`;
  await writeFile(path.join(dir, 'boot/core.yaml'), `id: flatcar-core\nos: flatcar\n${image}`);
  const { model, diagnostics } = await validateSot(dir);
  assert.ok(model, JSON.stringify(diagnostics));
  const host = own(model.sites, 'lab1')?.hosts.find((h) => h.name === 'core-01');
  assert.ok(host);
  const stage = renderStage(model, 'lab1', host, 0, 'tok');
  const base = stage.context.urls.assets;
  assert.equal(stage.image?.url, `${base}/files/images/os-2.img.zst`);
  const args = stage.cmdline.split(' ').filter((a) => a.startsWith('vaquero.image'));
  assert.deepEqual(args, [
    `vaquero.image=${base}/files/images/os-2.img.zst`,
    'vaquero.image.format=raw+zstd',
    `vaquero.image.checksum=${SHA256}`,
    'vaquero.image.disk=/dev/vda',
    `vaquero.image.report=${base}/image/52-54-00-10-00-01/1/tok`,
  ]);
});

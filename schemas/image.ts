import { z } from 'zod';

/** How an image is stored at its URL; the checksum is always of the raw (decompressed) image. */
export const IMAGE_FORMATS = ['raw', 'raw+gzip', 'raw+zstd'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

const CHECKSUM = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;
const DISK_HINTS = [
  /^\/dev\/(sd|vd|hd|xvd)[a-z]{1,2}$/,
  /^\/dev\/nvme\d+n\d+$/,
  /^\/dev\/disk\/by-(path|id)\/[A-Za-z0-9:._+-]+$/,
  /^serial:[A-Za-z0-9._-]+$/,
];
// A path on the agent that serves the host, no query, no `.` or `..` segment (the routes refuse them), no spaces: it goes on a kernel command line.
const AGENT_PATH = /^\/(files|cdn)\/(?:[A-Za-z0-9._+-]+\/)*[A-Za-z0-9._+-]+$/;

function checksumProblem(value: string): string | undefined {
  if (CHECKSUM.test(value)) return undefined;
  const [algo, hex = ''] = value.split(':', 2);
  if (algo !== 'sha256' && algo !== 'sha512')
    return `must be sha256:<64 hex digits> or sha512:<128 hex digits>, not "${value}"`;
  const want = algo === 'sha256' ? 64 : 128;
  if (!/^[0-9a-f]*$/.test(hex)) return `${algo} checksum must be lower-case hex digits`;
  return `${algo} checksum must have ${want} hex digits, not ${hex.length}`;
}

export const ImageSchema = z.strictObject({
  /** A path under the serving agent's /files or /cdn: the host fetches it from its own agent. */
  url: z.string().refine((u) => AGENT_PATH.test(u) && !u.split('/').some((s) => s === '..' || s === '.'), {
    error: (issue) =>
      `must be a path under the agent's /files/ or /cdn/ (letters, digits, ._+-), not "${String(issue.input)}"`,
  }),
  format: z.enum(IMAGE_FORMATS),
  /** Of the raw image, lower-case hex: what the deploy ramdisk reads back from the disk. */
  checksum: z.string().superRefine((value, ctx) => {
    const problem = checksumProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  /** The target disk: a kernel name, a /dev/disk/by-path or by-id link, or `serial:<serial>`. */
  disk: z.string().refine((d) => DISK_HINTS.some((re) => re.test(d)), {
    error: (issue) =>
      `must be /dev/sdX, /dev/vdX, /dev/hdX, /dev/xvdX, /dev/nvmeNnM, /dev/disk/by-path/…, /dev/disk/by-id/… or serial:<serial>, not "${String(issue.input)}"`,
  }),
});
export type Image = z.infer<typeof ImageSchema>;

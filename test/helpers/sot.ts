// Helpers for tests of the source-of-truth validator: fixtures built as overlays on a small valid SoT,
// and the CLI run in-process with its output captured.
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main';
import type { Io } from '../../cli/io';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** A small valid source of truth; every broken fixture is an overlay on it. */
export const sotMin = path.join(repoRoot, 'test/fixtures/sot-min');
/** One directory per broken case, each an overlay on sot-min with an `expected.txt`. */
export const brokenDir = path.join(repoRoot, 'test/fixtures/broken');
export const exampleSot = path.join(repoRoot, 'examples/sot');

/** Files of an overlay directory that describe the case rather than belong to the source of truth. */
const OVERLAY_META = new Set(['expected.txt', 'overlay.json', 'README.md']);

export interface OverlayManifest {
  /** Paths relative to the SoT root to remove from the base (files or directories). */
  delete?: string[];
  /**
   * A known validator bug: `expected.txt` holds the right diagnostics, which the validator does not print
   * yet. The case runs as a todo test until the bug is fixed; then remove this key.
   */
  todo?: string;
}

export async function readManifest(overlayDir: string): Promise<OverlayManifest> {
  let text: string;
  try {
    text = await readFile(path.join(overlayDir, 'overlay.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const manifest = JSON.parse(text) as OverlayManifest;
  for (const rel of manifest.delete ?? []) {
    if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..'))
      throw new Error(`${overlayDir}/overlay.json: delete path ${rel} must stay inside the SoT`);
  }
  return manifest;
}

/**
 * Copies sot-min to a fresh temporary directory and applies the overlays in order: their deletions
 * (`overlay.json`: `{ "delete": ["path"] }`), then their files, each replacing the base file of the same
 * path. Returns the directory; remove it with `removeSot`.
 */
export async function materialize(...overlayDirs: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-sot-'));
  await cp(sotMin, dir, { recursive: true });
  for (const overlay of overlayDirs) {
    const manifest = await readManifest(overlay);
    for (const rel of manifest.delete ?? []) await rm(path.join(dir, rel), { recursive: true });
    for (const entry of await readdir(overlay, { withFileTypes: true })) {
      if (entry.isFile() && OVERLAY_META.has(entry.name)) continue;
      await cp(path.join(overlay, entry.name), path.join(dir, entry.name), { recursive: true });
    }
  }
  return dir;
}

export async function removeSot(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** The broken fixtures, by name (the directories under test/fixtures/broken). */
export async function brokenCases(): Promise<string[]> {
  const entries = await readdir(brokenDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The `todo` reason of a broken fixture whose expectation the validator does not meet yet. */
export async function caseTodo(caseName: string): Promise<string | undefined> {
  return (await readManifest(path.join(brokenDir, caseName))).todo;
}

/** The diagnostic lines a broken fixture expects, without blank lines. */
export async function expectedLines(caseName: string): Promise<string[]> {
  const text = await readFile(path.join(brokenDir, caseName, 'expected.txt'), 'utf8');
  return text.split('\n').filter((line) => line.trim() !== '');
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs the CLI in-process, as `vaquero <argv>` would from `cwd`, capturing what it prints. */
export async function runCli(argv: string[], cwd: string = repoRoot): Promise<CliResult> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    cwd: () => cwd,
  };
  const code = await main(argv, io);
  return { code, out, err };
}

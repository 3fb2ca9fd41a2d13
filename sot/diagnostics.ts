import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** One problem found in a source of truth, printed as `file:line: path: message`. */
export interface Diagnostic {
  file: string;
  line: number;
  path: string;
  message: string;
  /** Which check found it, for machines (`--json`) and tests. */
  check: string;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(document)';
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}: ${d.path}: ${d.message}`;
}

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.path.localeCompare(b.path),
  );
}

/** A YAML document with what is needed to point at a line inside it. */
export interface DocRef {
  file: string;
  doc: Document;
  lineCounter: LineCounter;
  /** The line the document's content starts on, when it is known without looking at its nodes. */
  line?: number;
}

function nodeLine(node: Node | null | undefined, ref: DocRef): number | undefined {
  const start = node?.range?.[0];
  return start === undefined ? undefined : ref.lineCounter.linePos(start).line;
}

/**
 * The line of the deepest node that exists along `path`: the key's line for a map entry, so a missing
 * or unknown field points at its parent and a bad value at its own line.
 */
export function lineOf(ref: DocRef, path: readonly PathSegment[]): number {
  if (path.length === 0 && ref.line !== undefined) return ref.line;
  let node: unknown = ref.doc.contents;
  let line = nodeLine(ref.doc.contents, ref) ?? ref.line ?? 1;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (!pair) break;
      line = nodeLine(pair.key as Node, ref) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!item) break;
      line = nodeLine(item as Node, ref) ?? line;
      node = item;
    } else {
      break;
    }
  }
  return line;
}

export function at(ref: DocRef, path: readonly PathSegment[], check: string, message: string): Diagnostic {
  return { file: ref.file, line: lineOf(ref, path), path: formatPath(path), message, check };
}

// Hosts files are where a source of truth grows: 50,000 hosts are some 17 MB of YAML, which the `yaml`
// package parses at about 2 MB/s into documents that keep every node's position (and hundreds of MB
// alive). js-yaml reads the same text some fifteen times faster into plain values. So a hosts file is
// read with js-yaml first, under the `yaml` package's core schema, and only a file with something to
// report is read again with `yaml`, whose documents give every diagnostic its text and line.
import jsYaml from 'js-yaml';
import { Document, LineCounter, parseAllDocuments } from 'yaml';
import type { DocRef } from './diagnostics';

const scalar = (tag: string, test: RegExp, construct: (text: string) => unknown) =>
  new jsYaml.Type(`tag:yaml.org,2002:${tag}`, {
    kind: 'scalar',
    resolve: (data: unknown) => typeof data === 'string' && test.test(data),
    construct: (data: string) => construct(data),
  });

const FLOAT =
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/;

/** YAML 1.2's core schema exactly as the `yaml` package resolves plain scalars (yaml/dist/schema/core). */
const CORE = jsYaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar('null', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    scalar('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T'),
    // One type per tag: js-yaml keeps only the last implicit type of a tag.
    scalar('int', /^(?:0o[0-7]+|[-+]?[0-9]+|0x[0-9a-fA-F]+)$/, (s) =>
      s.startsWith('0o')
        ? parseInt(s.slice(2), 8)
        : s.startsWith('0x')
          ? parseInt(s.slice(2), 16)
          : parseInt(s, 10),
    ),
    scalar('float', FLOAT, (s) =>
      /^[-+]?\.(?:inf|Inf|INF)$/.test(s)
        ? s[0] === '-'
          ? -Infinity
          : Infinity
        : s.startsWith('.') && /nan$/i.test(s)
          ? NaN
          : parseFloat(s),
    ),
  ],
});

// Where the two parsers may disagree, the text goes to `yaml` alone: an anchor, alias, tag or reserved
// indicator at the start of a token, a complex key, a directive, a merge key, a tab, a byte-order mark,
// a CR line end. (Mid-token, as in `password: "!"` or a URL's `?`, they are plain characters to both.)
const DIVERGENT = /(?:^|[\s[{,])[&*!@`?]|^%|<<|[\t\r\uFEFF]/m;
/** An empty key (`{ : x }`, `- : x`): `yaml` makes it "", js-yaml "null". */
const EMPTY_KEY = /(?:^|[{,[-])[ ]*:(?:[ ,}\]]|$)/m;
const LINE_SPANNING = /["'{}[\]\n]/g;

/**
 * Whether a quoted scalar or a flow collection may span lines: js-yaml accepts continuation lines that
 * `yaml` refuses as under-indented, so such a text goes to `yaml` (a per-line count, comments included).
 */
function spansLines(text: string): boolean {
  let quotes = 0;
  let apostrophes = 0;
  let depth = 0;
  LINE_SPANNING.lastIndex = 0;
  for (let m = LINE_SPANNING.exec(text); m; m = LINE_SPANNING.exec(text)) {
    const c = m[0];
    if (c === '\n') {
      if (quotes % 2 !== 0 || apostrophes % 2 !== 0 || depth !== 0) return true;
    } else if (c === '"') quotes++;
    else if (c === "'") apostrophes++;
    else if (c === '{' || c === '[') depth++;
    else depth--;
  }
  return quotes % 2 !== 0 || apostrophes % 2 !== 0 || depth !== 0;
}

const mayDiverge = (text: string) => DIVERGENT.test(text) || EMPTY_KEY.test(text) || spansLines(text);

/** A hosts file read the fast way: each document's value and the line its content starts on. */
export interface FastDocs {
  docs: { data: unknown; line: number }[];
}

/** The documents of a file read with js-yaml, or undefined when the file must be read with `yaml`. */
export function fastParse(text: string): FastDocs | undefined {
  if (mayDiverge(text)) return undefined;
  const lines: number[] = [];
  let depth = 0;
  let values: unknown[];
  try {
    values = jsYaml.loadAll(text, null, {
      schema: CORE,
      listener: (event, state) => {
        if (event === 'close') depth--;
        else if (++depth === 1) lines.push(state.line + 1);
      },
    });
  } catch {
    return undefined;
  }
  if (values.length !== lines.length) return undefined;
  return { docs: values.map((data, i) => ({ data, line: lines[i] ?? 1 })) };
}

/**
 * The value of a one-document text as `yaml`'s `parse` would give it, or undefined when only `yaml`
 * can say (and word the error): a text that may read differently, or that js-yaml refuses.
 */
export function fastLoad(text: string): { value: unknown } | undefined {
  if (mayDiverge(text)) return undefined;
  try {
    return { value: jsYaml.load(text, { schema: CORE }) };
  } catch {
    return undefined;
  }
}

interface Parsed {
  byLine: Map<number, Document>;
  lineCounter: LineCounter;
}

/**
 * The one file whose `yaml` documents are at hand. Checks walk the hosts in file order, so one is
 * enough, and holding every file's documents is what cost 27 KB per host.
 */
let recent: { owner: ParsedLater; parsed: Parsed } | undefined;

/** A file's `yaml` documents by the line each starts on, parsed (again) when a diagnostic needs one. */
class ParsedLater {
  constructor(private readonly text: string) {}

  get(): Parsed {
    if (recent?.owner === this) return recent.parsed;
    const lineCounter = new LineCounter();
    const docs = parseAllDocuments(this.text, { lineCounter, uniqueKeys: true, prettyErrors: false });
    const byLine = new Map<number, Document>();
    for (const doc of Array.isArray(docs) ? docs : []) {
      const start = (doc.contents as { range?: number[] } | null)?.range?.[0];
      if (start !== undefined) byLine.set(lineCounter.linePos(start).line, doc);
    }
    recent = { owner: this, parsed: { byLine, lineCounter } };
    return recent.parsed;
  }
}

/** A ref to a document of a hosts file, found again in `yaml`'s documents by the line it starts on. */
class LazyDocRef implements DocRef {
  constructor(
    readonly file: string,
    readonly line: number,
    private readonly later: ParsedLater,
  ) {}

  get doc(): Document {
    // Not found (the parsers disagree on where it starts): a diagnostic then points at its first line.
    return this.later.get().byLine.get(this.line) ?? new Document();
  }

  get lineCounter(): LineCounter {
    return this.later.get().lineCounter;
  }
}

/** Refs to the documents of one hosts file, by the line each starts on; they keep only its text. */
export function lazyRefs(file: string, text: string): (line: number) => DocRef {
  const later = new ParsedLater(text);
  return (line) => new LazyDocRef(file, line, later);
}

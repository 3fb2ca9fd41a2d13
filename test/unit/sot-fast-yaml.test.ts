// Hosts files and rendered cloud-configs are read with js-yaml for speed, and must read exactly as the
// `yaml` package reads them (values and document lines), or be left to `yaml`. Checked on hand-picked
// cases where the two parsers differ, and on seeded mutations of the repository's hosts files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { LineCounter, parse, parseAllDocuments } from 'yaml';
import { fastLoad, fastParse } from '../../sot/fast-yaml';
import { repoRoot } from '../helpers/sot';

/** What `yaml` makes of a text, as the loader uses it: non-empty documents and their first lines. */
function slowDocs(text: string): { data: unknown; line: number }[] | 'error' {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return 'error';
  return docs
    .map((d) => ({
      data: d.toJS({ maxAliasCount: 100 }) as unknown,
      line: d.contents?.range ? lineCounter.linePos(d.contents.range[0]).line : -1,
    }))
    .filter((d) => d.data !== null && d.data !== undefined);
}

function fastDocs(text: string) {
  return fastParse(text)?.docs.filter((d) => d.data !== null && d.data !== undefined);
}

/** Asserts the fast reading, when there is one, is `yaml`'s; returns whether there was one. */
function assertSameAsYaml(text: string): boolean {
  const fast = fastDocs(text);
  if (!fast) return false;
  assert.deepEqual(fast, slowDocs(text), `js-yaml and yaml differ on:\n${text}`);
  return true;
}

const HOSTS = 'name: a\ngroup: g\ninterfaces: [{ mac: "52:54:00:00:00:01", subnet: s, ipv4: 10.0.0.2 }]\n';

describe('hosts files through js-yaml', () => {
  test('plain scalars resolve as in YAML 1.2 core, as the yaml package does', () => {
    const values = [
      ['3', 3],
      ['-12', -12],
      ['0o17', 15],
      ['0x1F', 31],
      ['1.50', 1.5],
      ['1e3', 1000],
      ['.inf', Infinity],
      ['-.Inf', -Infinity],
      ['~', null],
      ['True', true],
      ['0b101', '0b101'],
      ['1_000', '1_000'],
      ['yes', 'yes'],
      ['2024-01-01', '2024-01-01'],
      ['0777', 777],
    ] as const;
    for (const [text, value] of values) {
      const docs = fastDocs(`${HOSTS}metadata: { v: ${text} }\n`);
      assert.ok(docs, text);
      assert.deepEqual((docs[0]?.data as { metadata: unknown }).metadata, { v: value }, text);
      assert.ok(assertSameAsYaml(`${HOSTS}metadata: { v: ${text} }\n`));
    }
  });

  test('documents start where yaml says, after comments and separators', () => {
    const text = `# hosts\n\n${HOSTS}---\n# next\n\n${HOSTS}---\n---\n--- { name: b, group: g }\n`;
    assert.ok(assertSameAsYaml(HOSTS));
    assert.deepEqual(
      fastDocs(text)?.map((d) => d.line),
      [3, 9, 14],
    );
    assert.ok(assertSameAsYaml(text));
  });

  test('what the parsers read differently is left to yaml', () => {
    const cases = [
      // A quoted scalar continued on a line less indented than yaml allows: yaml refuses it.
      `${HOSTS}metadata:\n  rack: "r1\nr2"\n`,
      `${HOSTS}metadata: { rack: r1,\n  model: m }\n`,
      // An empty key: yaml reads "", js-yaml "null".
      `${HOSTS}metadata: { : x }\n`,
      `${HOSTS}metadata:\n  - : x\n`,
      // A complex key, an anchor and alias, a tag, a merge key, a directive, a tab.
      `${HOSTS}? metadata\n: { a: 1 }\n`,
      `${HOSTS}metadata: &m { a: 1 }\nbmc: *m\n`,
      `${HOSTS}metadata: !!map { a: 1 }\n`,
      `${HOSTS}metadata: { <<: { a: 1 } }\n`,
      `%YAML 1.2\n---\n${HOSTS}`,
      `${HOSTS}metadata:\n\track: r1\n`,
    ];
    for (const text of cases) assert.equal(fastParse(text), undefined, text);
    // Inside a token they are ordinary characters, to both parsers alike.
    assert.ok(assertSameAsYaml(`${HOSTS}metadata: { pw: "!", url: "http://x/?a=1", note: a&b*c }\n`));
  });

  test('seeded mutations of the repository hosts files read the same or go to yaml', () => {
    const files = execFileSync('find', ['examples', 'test/fixtures', '-path', '*/hosts/*.yaml'], {
      cwd: repoRoot,
    })
      .toString()
      .trim()
      .split('\n');
    const corpus = files.map((f) => readFileSync(`${repoRoot}/${f}`, 'utf8'));
    assert.ok(corpus.length > 10);
    const inserts = [
      ':',
      ' ',
      '-',
      '\n',
      '"',
      "'",
      '[',
      ']',
      '{',
      '}',
      '#',
      ',',
      '0',
      '\n  ',
      '\n    x',
      ' |\n  ',
      ' >-\n   ',
      '\n---\n',
      '?',
      '~',
      'null',
      '1e3',
      '0x1',
      '- ',
      '&a',
      '*a',
      '!',
    ];
    let seed = 12;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      let text = corpus[rnd(corpus.length)] ?? '';
      for (let k = 1 + rnd(3); k > 0; k--) {
        const at = rnd(text.length + 1);
        const op = rnd(3);
        const insert = inserts[rnd(inserts.length)] ?? '';
        text =
          op === 0
            ? text.slice(0, at) + text.slice(at + 1 + rnd(3))
            : text.slice(0, at) + insert + text.slice(at + (op === 2 ? 1 : 0));
      }
      if (assertSameAsYaml(text)) fast++;
    }
    assert.ok(fast > 500, `only ${fast} of 3000 mutations took the fast path`);
  });
});

describe('cloud-configs through js-yaml', () => {
  const config = [
    '#cloud-config',
    'autoinstall:',
    '  identity: { hostname: st-01, username: vaquero, password: "!" }',
    '  network:',
    '    ethernets:',
    '      prov:',
    '        match: { macaddress: "52:54:00:20:03:01" }',
    '        addresses: [10.20.0.41/22]',
    '  late-commands:',
    '    - curl -fsS -X POST http://10.20.0.5:8080/checkpoint/52-54-00-20-03-01/2/BOOT-TOKEN',
    '',
  ].join('\n');

  test('a rendered config reads as yaml reads it; a broken one is left to yaml', () => {
    assert.deepEqual(fastLoad(config)?.value, parse(config));
    assert.equal(fastLoad(`${config}  bad: "x\ny"\n`), undefined);
    assert.equal(fastLoad(`${config}---\na: 1\n`), undefined, 'two documents: yaml words the error');
  });
});

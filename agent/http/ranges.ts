/** An inclusive byte range of a file. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The ranges of a `Range` header (RFC 9110 section 14.2) over a file of `size` bytes: undefined when
 * the header is not a byte range (it is then ignored and the whole file sent), 'unsatisfiable' when no
 * range overlaps the file (416).
 */
export function parseRange(header: string, size: number): ByteRange[] | 'unsatisfiable' | undefined {
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!match?.[1]) return undefined;
  const ranges: ByteRange[] = [];
  for (const part of match[1].split(',')) {
    const spec = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(part);
    if (!spec || (spec[1] === '' && spec[2] === '')) return undefined;
    const [first, last] = [spec[1] ?? '', spec[2] ?? ''];
    if (first === '') {
      const suffix = Number(last);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(size - suffix, 0), end: size - 1 });
      continue;
    }
    const start = Number(first);
    const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return undefined;
    if (start < size) ranges.push({ start, end });
  }
  return ranges.length ? ranges : 'unsatisfiable';
}

/** Whether an `If-None-Match` list names the entity tag (weak comparison, section 13.1.2). */
export function etagMatches(header: string, etag: string): boolean {
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
}

// The site's boot state, held by the server so that every agent of a site and every server replica
// sees one truth (docs/ha.md): which hosts are armed, and the power claims of the exactly-once power
// cycle. One small document per site (arms exist only while a host is being reprovisioned, and
// settled claims are pruned), replaced by compare-and-set in a file or in etcd.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  ArmEntrySchema,
  PowerClaimSchema,
  type ArmEntry,
  type PowerClaim,
  type SiteArms,
} from '../../schemas/agent';

const BootDocSchema = z.object({
  /** Moves with the arms only: a watcher is not woken by claims. */
  revision: z.number().int().nonnegative(),
  arms: z.array(ArmEntrySchema),
  claims: z.array(PowerClaimSchema),
  /** Made at the document's first write (SiteArms.epoch); a document of an older server has none. */
  epoch: z.string().max(64).optional(),
});
export type BootDoc = z.infer<typeof BootDocSchema>;

/** A stored document and the version a compare-and-set must name (undefined: none stored yet). */
export interface StoredDoc {
  doc: BootDoc;
  version: string | undefined;
}

/** Where the documents live: a directory (one server) or etcd (HA, etcd-boot-docs.ts). */
export interface BootDocs {
  read(site: string): Promise<StoredDoc>;
  /** Writes `doc` only while the stored version is still `version`; false when someone wrote first. */
  write(site: string, doc: BootDoc, version: string | undefined): Promise<boolean>;
  /** The sites that have a document (`vaquero migrate` copies them). */
  sites(): Promise<string[]>;
  /**
   * Resolves at the site's next write (by any server on these docs), or after `ms`; at once when the
   * stored version is no longer `version` (what the caller read before it asked).
   */
  changed(site: string, ms: number, signal?: AbortSignal, version?: string): Promise<void>;
}

export const emptyDoc = (): BootDoc => ({ revision: 0, arms: [], claims: [] });

export function parseDoc(text: string | undefined | null): BootDoc {
  return text ? BootDocSchema.parse(JSON.parse(text)) : emptyDoc();
}

const siteArms = (doc: BootDoc): SiteArms => ({
  revision: doc.revision,
  arms: doc.arms,
  ...(doc.epoch ? { epoch: doc.epoch } : {}),
});

/** Settled claims are kept an hour (an activity's retries end sooner), any claim a day. */
const DONE_CLAIM_MS = 3_600_000;
const ANY_CLAIM_MS = 86_400_000;
/** A site's claims and arms beyond this are refused: a runaway caller must not grow the document. */
export const MAX_BOOT_ENTRIES = 20_000;

export class BootStateFullError extends Error {
  constructor(site: string) {
    super(`site ${site} has ${MAX_BOOT_ENTRIES} arms or power claims already`);
    this.name = 'BootStateFullError';
  }
}

function prune(doc: BootDoc, now: number): void {
  doc.claims = doc.claims.filter((c) => {
    const begun = Date.parse(c.begun);
    if (now - begun > ANY_CLAIM_MS) return false;
    return !c.done || now - Date.parse(c.done) < DONE_CLAIM_MS;
  });
}

/** The operations of the agent API on the site's documents; every write is durable when it resolves. */
export class BootStateStore {
  constructor(private readonly docs: BootDocs) {}

  /** Read-modify-write until the compare-and-set wins; `change` returns undefined for "no write". */
  private async update<T>(site: string, change: (doc: BootDoc) => T | undefined): Promise<T | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const { doc, version } = await this.docs.read(site);
      const result = change(doc);
      if (result === undefined) return undefined;
      doc.epoch ??= randomUUID();
      if (await this.docs.write(site, doc, version)) return result;
    }
    throw new Error(`site ${site}'s boot state: too many concurrent writes`);
  }

  async arms(site: string): Promise<SiteArms> {
    const { doc } = await this.docs.read(site);
    return siteArms(doc);
  }

  /**
   * The arms once the revision is past `since` (at once if it is, or if the store's epoch is not
   * `epoch`, the one the watcher holds), or as they are after `waitMs`.
   */
  async watch(
    site: string,
    since: number,
    waitMs: number,
    signal?: AbortSignal,
    epoch?: string,
  ): Promise<SiteArms> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const { doc, version } = await this.docs.read(site);
      const left = deadline - Date.now();
      const otherStore = Boolean(epoch && doc.epoch && doc.epoch !== epoch);
      if (doc.revision !== since || otherStore || left <= 0 || signal?.aborted) return siteArms(doc);
      await this.docs.changed(site, left, signal, version);
    }
  }

  async arm(site: string, entry: ArmEntry): Promise<number> {
    const revision = await this.update(site, (doc) => {
      const others = doc.arms.filter((a) => a.mac !== entry.mac);
      if (others.length >= MAX_BOOT_ENTRIES) throw new BootStateFullError(site);
      doc.arms = [...others, entry];
      return (doc.revision += 1);
    });
    return revision ?? 0;
  }

  /** Disarms a MAC; with a workflow id, only if that workflow armed it (a newer arm is left alone). */
  async disarm(
    site: string,
    mac: string,
    workflowId?: string,
  ): Promise<{ revision: number; disarmed: boolean }> {
    const revision = await this.update(site, (doc) => {
      const current = doc.arms.find((a) => a.mac === mac);
      if (!current || (workflowId && current.workflowId !== workflowId)) return undefined;
      doc.arms = doc.arms.filter((a) => a !== current);
      return (doc.revision += 1);
    });
    if (revision !== undefined) return { revision, disarmed: true };
    return { revision: (await this.arms(site)).revision, disarmed: false };
  }

  async claim(site: string, key: string): Promise<PowerClaim | undefined> {
    return (await this.docs.read(site)).doc.claims.find((c) => c.key === key);
  }

  /** Records a claim's begin (a new attempt of the key starts over: its done and seen are cleared). */
  async begin(site: string, claim: PowerClaim): Promise<void> {
    await this.update(site, (doc) => {
      prune(doc, Date.now());
      const others = doc.claims.filter((c) => c.key !== claim.key);
      if (others.length >= MAX_BOOT_ENTRIES) throw new BootStateFullError(site);
      doc.claims = [...others, claim];
      return true;
    });
  }

  /** Marks a claim done; false when there is no such claim. */
  async done(site: string, key: string, at: string): Promise<boolean> {
    const result = await this.update(site, (doc) => {
      const claim = doc.claims.find((c) => c.key === key);
      if (!claim) return false;
      if (claim.done) return undefined;
      claim.done = at;
      return true;
    });
    return result ?? (await this.claim(site, key)) !== undefined;
  }

  /** Boot traffic seen by an agent: evidence for every claim of the MAC begun before it and not done. */
  async seen(site: string, seen: readonly { mac: string; at: string }[]): Promise<number> {
    const marked = await this.update(site, (doc) => {
      let count = 0;
      for (const claim of doc.claims) {
        if (claim.done || claim.seen) continue;
        const heard = seen.find((s) => s.mac === claim.mac && Date.parse(s.at) >= Date.parse(claim.begun));
        if (!heard) continue;
        claim.seen = heard.at;
        count++;
      }
      return count > 0 ? count : undefined;
    });
    return marked ?? 0;
  }
}

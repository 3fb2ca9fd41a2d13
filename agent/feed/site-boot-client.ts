// The agent's side of the site's shared boot state (server/http/agent-boot-api.ts): arms written
// through the server and watched from it, and the power ledger kept there, so that whichever agent
// of the site runs an activity or answers a host sees what the others did.
import {
  DisarmResultSchema,
  PowerClaimSchema,
  SiteArmsSchema,
  type ArmEntry,
  type SiteArms,
} from '../../schemas/agent';
import type { LedgerState, PowerLedger } from '../../activities/agent-activities';
import type { ServerFeed } from './server-feed';

type Api = Pick<ServerFeed, 'request' | 'failure'>;

const q = (params: Record<string, string | number>) =>
  new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();

export class SiteBootClient implements PowerLedger {
  constructor(
    private readonly api: Api,
    /** This agent's name, recorded with the claims it begins. */
    private readonly agent: string,
  ) {}

  /**
   * The site's arms once their revision differs from `since` (-1: at once) or the store's epoch
   * from `epoch` (the one the agent holds; none: ''), or after `waitMs`.
   */
  async arms(since: number, waitMs: number, epoch?: string): Promise<SiteArms> {
    const reply = await this.api.request(
      'GET',
      `/arms?${q({ since, wait_ms: waitMs, epoch: epoch ?? '' })}`,
      undefined,
      waitMs + 10_000,
    );
    if (reply.status !== 200) throw this.api.failure(reply, 'the site arms');
    return SiteArmsSchema.parse(reply.body);
  }

  /** Resolves with the site's revision once the server has the arm durably. */
  async arm(entry: ArmEntry): Promise<number> {
    const reply = await this.api.request('PUT', `/arms/${encodeURIComponent(entry.mac)}`, entry);
    if (reply.status !== 200) throw this.api.failure(reply, `arming ${entry.host}`);
    return (reply.body as { revision: number }).revision;
  }

  async disarm(mac: string, workflowId?: string): Promise<{ revision: number; disarmed: boolean }> {
    const query = workflowId ? `?${q({ workflow_id: workflowId })}` : '';
    const reply = await this.api.request('DELETE', `/arms/${encodeURIComponent(mac)}${query}`);
    if (reply.status !== 200) throw this.api.failure(reply, `disarming ${mac}`);
    return DisarmResultSchema.parse(reply.body);
  }

  async state(key: string): Promise<LedgerState> {
    const reply = await this.api.request('GET', `/claims?${q({ key })}`);
    if (reply.status === 404) return { state: 'new' };
    if (reply.status !== 200) throw this.api.failure(reply, `power claim ${key}`);
    const claim = PowerClaimSchema.parse(reply.body);
    if (claim.done) return { state: 'done' };
    return { state: 'in-doubt', since: claim.begun, ...(claim.seen ? { seen: claim.seen } : {}) };
  }

  async begin(key: string, at: string, mac?: string): Promise<void> {
    if (!mac) throw new Error(`power claim ${key}: the shared ledger needs the host's MAC`);
    const reply = await this.api.request('PUT', `/claims?${q({ key })}`, { mac, at, agent: this.agent });
    if (reply.status !== 200) throw this.api.failure(reply, `beginning power claim ${key}`);
  }

  async done(key: string): Promise<void> {
    const reply = await this.api.request('POST', `/claims/done?${q({ key })}`);
    if (reply.status !== 200) throw this.api.failure(reply, `finishing power claim ${key}`);
  }

  /** Boot traffic of armed MACs, the evidence a retry on another agent settles a claim in doubt by. */
  async seen(seen: { mac: string; at: string }[]): Promise<void> {
    const reply = await this.api.request('POST', '/seen', { seen });
    if (reply.status !== 200) throw this.api.failure(reply, 'reporting boot traffic');
  }
}

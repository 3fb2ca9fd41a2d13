// pull_request deliveries: the head commit is validated and planned against the last applied
// revision, and the result goes back to GitHub as a commit status (and, with a GitHub App token, a
// check run whose text is the plan). Nothing is applied: that waits for the merge's push.
import { Octokit } from 'octokit';
import { z } from 'zod';
import { formatDiagnostic } from '../../sot/diagnostics';
import { planChanges } from '../../sot/plan';
import { validateSot } from '../../sot/validate';
import type { ModelStore } from '../../activities/store/model-store';
import type { Plan } from '../../schemas/plan';
import { planText } from '../../sot/plan-text';
import type { HookedSource, ServerConfig } from '../config';
import type { PullRequestChecks, PullRequestOutcome } from '../http/deps';
import type { Log } from '../http/log';
import type { ServerMetrics } from '../http/metrics';
import { sotAtCommit } from './sot-at-commit';

const CHECKED_ACTIONS = new Set(['opened', 'synchronize', 'reopened']);
/** GitHub's limits: a status description of 140 characters, a check run text of 65535. */
const DESCRIPTION_MAX = 140;
const CHECK_TEXT_MAX = 65_000;
export const STATUS_CONTEXT = 'vaquero/plan';

const PullRequestPayloadSchema = z.object({
  action: z.string(),
  number: z.int(),
  pull_request: z.object({
    head: z.object({ sha: z.string().regex(/^[0-9a-f]{40}$/, 'must be a commit SHA') }),
    base: z.object({ ref: z.string(), repo: z.object({ full_name: z.string() }) }),
  }),
});
type PullRequestPayload = z.infer<typeof PullRequestPayloadSchema>;

interface Verdict {
  state: 'success' | 'failure' | 'error';
  description: string;
  title: string;
  text: string;
}

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

function planSummary(plan: Plan): string {
  const hosts = plan.sites.reduce((n, s) => n + s.waves.reduce((m, w) => m + w.hosts.length, 0), 0);
  const sites = plan.sites.filter((s) => s.waves.some((w) => w.hosts.length > 0)).length;
  return hosts === 0
    ? 'valid; nothing to reprovision'
    : `valid; ${hosts} hosts to reprovision in ${sites} sites`;
}

export interface PullRequestDeps {
  config: ServerConfig;
  token: string;
  store: ModelStore;
  metrics?: ServerMetrics;
}

export class GitHubPullRequestChecks implements PullRequestChecks {
  private readonly octokit: Octokit;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: PullRequestDeps) {
    // No retries and no throttling plugins' waits: a check that fails is logged and reported.
    this.octokit = new Octokit({ auth: deps.token, baseUrl: deps.config.github.api_url.replace(/\/$/, '') });
  }

  check(source: HookedSource, payload: unknown, log: Log): PullRequestOutcome {
    const parsed = PullRequestPayloadSchema.safeParse(payload);
    if (!parsed.success)
      return { status: 'ignored', reason: `not a pull_request payload: ${parsed.error.issues[0]?.message}` };
    const pr = parsed.data;
    const repo = pr.pull_request.base.repo.full_name;
    if (!CHECKED_ACTIONS.has(pr.action))
      return { status: 'ignored', reason: `action ${pr.action} is not checked` };
    if (pr.pull_request.base.ref !== source.branch)
      return {
        status: 'ignored',
        reason: `a pull request into ${pr.pull_request.base.ref}; this hook applies ${source.branch}`,
      };
    if (source.kind === 'github' && repo.toLowerCase() !== source.repo.toLowerCase())
      return { status: 'ignored', reason: `a pull request in ${repo}; this hook watches ${source.repo}` };
    const sha = pr.pull_request.head.sha;
    const job = this.run(source, repo, pr, log).finally(() => this.inFlight.delete(job));
    this.inFlight.add(job);
    return { status: 'checking', sha };
  }

  /** Resolves when every check started so far has reported (a clean stop waits for them). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async run(source: HookedSource, repo: string, pr: PullRequestPayload, log: Log): Promise<void> {
    const sha = pr.pull_request.head.sha;
    const fields = { pr: pr.number, sha, repo };
    let verdict: Verdict;
    try {
      await this.postStatus(repo, sha, { state: 'pending', description: 'validating and planning' });
      verdict = await this.evaluate(source, repo, sha);
    } catch (err) {
      const message = (err as Error).message;
      log.warn({ ...fields, error: message }, 'pull request check could not run');
      verdict = {
        state: 'error',
        description: `cannot check: ${message}`,
        title: 'Not checked',
        text: message,
      };
    }
    this.deps.metrics?.pullRequestChecks.inc({ outcome: verdict.state });
    try {
      await this.report(repo, sha, verdict, log);
      log.info({ ...fields, state: verdict.state }, 'pull request checked');
    } catch (err) {
      log.error({ ...fields, error: (err as Error).message }, 'pull request result not posted to GitHub');
    }
  }

  private async evaluate(source: HookedSource, repo: string, sha: string): Promise<Verdict> {
    const sot = await sotAtCommit(this.octokit, source, repo, sha);
    try {
      const result = await validateSot(sot.root);
      if (!result.model) {
        const problems = result.diagnostics.map(formatDiagnostic);
        const description = `invalid: ${problems.length} problems; first: ${problems[0] ?? ''}`;
        return {
          state: 'failure',
          description,
          title: `${problems.length} problems`,
          text: problems.join('\n'),
        };
      }
      const applied = await this.deps.store.getApplied();
      const before = applied ? await this.deps.store.getRevision(applied) : undefined;
      const plan = planChanges(before, result.model, before ? applied! : '(nothing applied)', sha);
      const summary = planSummary(plan);
      return { state: 'success', description: summary, title: summary, text: planText(plan) };
    } finally {
      await sot.cleanup();
    }
  }

  private async postStatus(
    repo: string,
    sha: string,
    status: { state: Verdict['state'] | 'pending'; description: string },
  ) {
    const [owner = '', name = ''] = repo.split('/');
    await this.octokit.rest.repos.createCommitStatus({
      owner,
      repo: name,
      sha,
      state: status.state,
      context: STATUS_CONTEXT,
      description: clip(status.description, DESCRIPTION_MAX),
    });
  }

  private async report(repo: string, sha: string, verdict: Verdict, log: Log) {
    await this.postStatus(repo, sha, verdict);
    if (!this.deps.config.github.check_runs) return;
    const [owner = '', name = ''] = repo.split('/');
    try {
      await this.octokit.rest.checks.create({
        owner,
        repo: name,
        name: STATUS_CONTEXT,
        head_sha: sha,
        status: 'completed',
        conclusion: verdict.state === 'error' ? 'neutral' : verdict.state,
        output: {
          title: clip(verdict.title, 255),
          summary: clip(verdict.description, DESCRIPTION_MAX),
          text: `\`\`\`\n${clip(verdict.text, CHECK_TEXT_MAX)}\n\`\`\``,
        },
      });
    } catch (err) {
      // Only GitHub App tokens may create check runs; the status above already tells the result.
      log.warn(
        { repo, sha, error: (err as Error).message },
        'check run not created (needs a GitHub App token)',
      );
    }
  }
}

// The OpenAPI 3.1 document of /api/v1, written by hand; its bodies come from the zod schemas the
// routes validate with, so the two cannot drift apart.
import { z } from 'zod';
import { ApplyRequestSchema } from '../../schemas/applied';
import {
  AbortBodySchema,
  EmptyBodySchema,
  ErrorBodySchema,
  RetryHostBodySchema,
  RolloutListSchema,
  RolloutStatusResponseSchema,
  CommandDoneSchema,
} from '../../schemas/api';

const schema = (s: z.ZodType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' });

const json = (s: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema: schema(s) } },
});

const errors = {
  '401': { $ref: '#/components/responses/Unauthorized' },
  '403': { $ref: '#/components/responses/Forbidden' },
  '404': json(ErrorBodySchema, 'No such rollout'),
};

const rolloutParams = [
  { name: 'site', in: 'path', required: true, schema: { type: 'string' } },
  {
    name: 'sha7',
    in: 'path',
    required: true,
    description: 'The first 7 hex digits of the commit',
    schema: { type: 'string', pattern: '^[0-9a-f]{7}$' },
  },
];

function signalPath(name: string, summary: string, body: z.ZodType) {
  return {
    post: {
      operationId: `${name.replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase())}Rollout`,
      summary,
      parameters: rolloutParams,
      requestBody: {
        required: false,
        content: { 'application/json': { schema: schema(body, 'input') } },
      },
      responses: {
        '200': json(CommandDoneSchema, 'The rollout took the command (an Update): its new state'),
        '400': json(ErrorBodySchema, 'The body is not valid'),
        '409': json(
          ErrorBodySchema,
          'The rollout refused: the reason (wrong state, host not failed, closed)',
        ),
        ...errors,
      },
    },
  };
}

const signals = [
  ['pause', 'Start no more hosts; hosts in flight finish', EmptyBodySchema],
  ['resume', 'Start hosts again', EmptyBodySchema],
  ['approve', 'Go on after the canary (site policy approval_required)', EmptyBodySchema],
  ['abort', 'Stop: hosts in flight cancel at a safe point, no more start', AbortBodySchema],
  ['retry-host', 'Reprovision a failed host again, from the step where it failed', RetryHostBodySchema],
] as const;

/** The rollout routes other than the signals. */
function rolloutPaths(): Record<string, unknown> {
  return {
    '/rollouts': {
      get: {
        operationId: 'listRollouts',
        summary: 'Rollouts, newest first: running ones, or all with all=true',
        parameters: [
          { name: 'site', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'all', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] } },
        ],
        responses: { '200': json(RolloutListSchema, 'The rollouts'), ...errors },
      },
    },
    '/rollouts/{site}/{sha7}/status': {
      get: {
        operationId: 'rolloutStatus',
        summary: "The rollout's status query: phase, why it waits, wave, counts and a page of hosts",
        parameters: [
          ...rolloutParams,
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } },
          {
            name: 'limit',
            in: 'query',
            description: 'Hosts in the page (default 1000)',
            schema: { type: 'integer', minimum: 0, maximum: 5000 },
          },
          {
            name: 'state',
            in: 'query',
            schema: {
              type: 'string',
              enum: ['pending', 'running', 'succeeded', 'failed', 'skipped', 'carried-over'],
            },
          },
          { name: 'host', in: 'query', description: 'Only this host', schema: { type: 'string' } },
        ],
        responses: { '200': json(RolloutStatusResponseSchema, 'The status'), ...errors },
      },
    },
  };
}

/** The routes over model revisions, and this document. */
function modelPaths(): Record<string, unknown> {
  return {
    '/sites': {
      get: {
        operationId: 'listSites',
        summary: 'The sites of the last applied commit',
        responses: { '200': { description: '{ commit, sites: [{ id, name, hosts, agents }] }' }, ...errors },
      },
    },
    '/sites/{site}/hosts': {
      get: {
        operationId: 'listHosts',
        summary: "A site's hosts, each with its last reprovision (rollout, state, step, error) or null",
        parameters: [{ name: 'site', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: '{ site, commit, hosts }' }, ...errors },
      },
    },
    '/plan': {
      get: {
        operationId: 'plan',
        summary: 'The plan from one model revision to another (from: default the last applied commit)',
        parameters: [
          { name: 'to', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'from', in: 'query', required: false, schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'The plan: per site, waves of hosts and why' }, ...errors },
      },
    },
    '/revisions': {
      get: {
        operationId: 'listRevisions',
        summary: 'Applied commits, newest first (at most 100), and the commit applied last',
        responses: {
          '200': { description: '{ applied, revisions: [{ commit, workflowId, execution, startTime }] }' },
          ...errors,
        },
      },
    },
    '/revisions/{commit}': {
      get: {
        operationId: 'getRevision',
        summary: 'The model revision of a commit: the validated SoT, self-contained',
        parameters: [{ name: 'commit', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'The model' }, ...errors },
      },
    },
    '/apply': {
      post: {
        operationId: 'apply',
        summary:
          "An operator's apply of a commit; `force` past the Git order check (a rollback, a rewritten history)",
        requestBody: {
          required: true,
          content: { 'application/json': { schema: schema(ApplyRequestSchema, 'input') } },
        },
        responses: {
          '200': { description: '{ status: duplicate, workflowId, commit, reason }' },
          '202': { description: '{ status: started, workflowId, commit }' },
          '409': {
            description:
              '{ status: stale, workflowId, commit, reason }: not a descendant of the applied commit',
          },
          ...errors,
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openApi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1' }, ...errors },
      },
    },
  };
}

export function openApiDocument() {
  const paths: Record<string, unknown> = { ...rolloutPaths(), ...modelPaths() };
  for (const [name, summary, body] of signals)
    paths[`/rollouts/{site}/{sha7}/${name}`] = signalPath(name, summary, body);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Vaquero user API',
      version: '1',
      description: 'Every route needs `Authorization: Bearer <token>`: none is 401, an unknown token 403.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Unauthorized: json(ErrorBodySchema, 'No bearer token'),
        Forbidden: json(ErrorBodySchema, 'The bearer token is not accepted'),
      },
    },
  };
}

// Prometheus metrics of one server (docs/api.md, "Metrics"). Each server has its own registry, so a
// standalone process or a test can run several without their counters mixing.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  /** By route pattern (`/api/v1/rollouts/:site/:sha7/status`), never the raw path: bounded labels. */
  httpRequests: Counter<'method' | 'route' | 'status'>;
  /** Webhook deliveries by event and outcome (started, duplicate, ignored, refused, ...). */
  webhookDeliveries: Counter<'hook' | 'event' | 'outcome'>;
  /** Workflows this server started, by type and trigger (push, poll). */
  workflowsStarted: Counter<'workflow' | 'trigger'>;
  /** Pull-request checks posted to GitHub, by result (success, failure, error). */
  pullRequestChecks: Counter<'outcome'>;
  /** Activities this server's `vaquero-server` worker ran: servers sharing the queue show their share. */
  activities: Counter<'activity' | 'outcome'>;
  leader: Gauge;
}

export function createMetrics(options: { processMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'vaquero_' });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: 'vaquero_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'vaquero_webhook_deliveries_total',
      help: 'GitHub webhook deliveries, by hook, event and outcome',
      labelNames: ['hook', 'event', 'outcome'],
      registers,
    }),
    workflowsStarted: new Counter({
      name: 'vaquero_workflows_started_total',
      help: 'Workflows started by this server, by workflow type and trigger',
      labelNames: ['workflow', 'trigger'],
      registers,
    }),
    pullRequestChecks: new Counter({
      name: 'vaquero_pull_request_checks_total',
      help: 'Pull-request validations reported to GitHub, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    activities: new Counter({
      name: 'vaquero_activities_total',
      help: 'Activities run by this server, by activity type and outcome (completed, failed)',
      labelNames: ['activity', 'outcome'],
      registers,
    }),
    leader: new Gauge({
      name: 'vaquero_leader',
      help: '1 while this server is the elected leader, else 0',
      registers,
    }),
  };
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import { createSmokeActivities } from '../../activities/smoke';
import type { pingWorkflow } from '../../workflows';
import { connectOrSkip, withWorker } from '../helpers/temporal';

test('pingWorkflow completes on the real Temporal server through its activity', async (t) => {
  const connection = await connectOrSkip(t);
  if (!connection) return;
  const client = new Client({ connection });
  const workflowId = `smoke-ping-${randomUUID()}`;

  const { result, history, description } = await withWorker(
    { taskQueue: 'smoke', activities: createSmokeActivities() },
    async (taskQueue) => {
      const handle = await client.workflow.start<typeof pingWorkflow>('pingWorkflow', {
        taskQueue,
        workflowId,
        args: ['vaquero'],
      });
      return {
        result: await handle.result(),
        history: await handle.fetchHistory(),
        description: await handle.describe(),
      };
    },
  );

  assert.equal(result, 'pong: vaquero');
  assert.equal(description.status.name, 'COMPLETED');
  const events = history.events ?? [];
  assert.ok(
    events.some((e) => e.activityTaskCompletedEventAttributes),
    'history records the echo activity completing',
  );
  assert.ok(events.some((e) => e.workflowExecutionCompletedEventAttributes));
});

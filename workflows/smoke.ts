import { proxyActivities } from '@temporalio/workflow';
import type { SmokeActivities } from '../activities/smoke';

const { echo } = proxyActivities<SmokeActivities>({ startToCloseTimeout: '10 seconds' });

/** Round trip through one activity: the smallest workflow that exercises a worker end to end. */
export async function pingWorkflow(name: string): Promise<string> {
  return await echo(`pong: ${name}`);
}

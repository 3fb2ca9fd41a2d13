// The floor benchmark's workflow (scripts/bench/temporal-floor.ts): the shape of a host
// reprovision with no Vaquero code in it — one local activity, one activity, a deadline timer,
// two signals, done: 21 history events, as many as a host workflow in the rollout benchmark.
import {
  condition,
  defineSignal,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';

export interface FloorActivities {
  note(): Promise<void>;
  work(workflowId: string): Promise<void>;
}

const { note } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '10s' });
const { work } = proxyActivities<FloorActivities>({ startToCloseTimeout: '60s' });

export const step = defineSignal<[string]>('step');

export async function floorWorkflow(id: string): Promise<number> {
  let steps = 0;
  setHandler(step, () => void steps++);
  await note();
  await work(id);
  if (!(await condition(() => steps >= 2, '122s'))) throw new Error('the signals did not come');
  return steps;
}

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

export const step = defineSignal<[string]>('step');

/** `agentQueue`: the activity runs on another worker, as a host's power cycle runs on an agent. */
export async function floorWorkflow(id: string, agentQueue: string): Promise<number> {
  let steps = 0;
  setHandler(step, () => void steps++);
  await note();
  await proxyActivities<FloorActivities>({ startToCloseTimeout: '60s', taskQueue: agentQueue }).work(id);
  if (!(await condition(() => steps >= 2, '122s'))) throw new Error('the signals did not come');
  return steps;
}

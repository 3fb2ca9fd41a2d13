import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../schemas/search-attributes';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `fn` until it succeeds or `timeoutMs` passes: a new namespace takes seconds to be seen everywhere. */
async function eventually<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await sleep(500);
    }
  }
}

/** Creates a namespace if it does not exist and waits until the frontend serves it. */
export async function ensureNamespace(
  connection: Connection,
  namespace: string,
  retentionDays = 3,
): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return;
  } catch {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(retentionDays * 86_400_000),
    });
  }
  await eventually(`namespace ${namespace} not ready`, 30_000, () =>
    connection.operatorService.listSearchAttributes({ namespace }),
  );
}

/** Registers Vaquero's search attributes on a namespace (idempotent), so rollouts filter in the UI. */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const missing = async () => {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    return Object.keys(SEARCH_ATTRIBUTES).filter((name) => !existing.customAttributes?.[name]);
  };
  const names = await missing();
  if (names.length === 0) return;
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(names.map((name) => [name, keyword])),
  });
  await eventually(`search attributes not registered on ${namespace}`, 30_000, async () => {
    if ((await missing()).length > 0) throw new Error('still missing');
  });
}

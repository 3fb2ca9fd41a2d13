// The rollout benchmark's payload scan (scripts/bench/lib/histories.ts) finds a payload wherever an
// event carries one, so "the largest payload in any history" misses none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { payloadBlobs } from '../../scripts/bench/lib/histories';

const { HistoryEvent } = proto.temporal.api.history.v1;
const payload = (bytes: number) => ({
  metadata: { encoding: new TextEncoder().encode('json/plain') },
  data: new Uint8Array(bytes),
});
const META = 'encoding'.length + 'json/plain'.length;

test('payloads are found in inputs, signals, markers, continue-as-new, memos and headers', () => {
  const events = [
    HistoryEvent.create({
      workflowExecutionStartedEventAttributes: {
        input: { payloads: [payload(10), payload(20)] },
        memo: { fields: { note: payload(5) } },
        header: { fields: { trace: payload(3) } },
      },
    }),
    HistoryEvent.create({
      workflowExecutionSignaledEventAttributes: { input: { payloads: [payload(300)] } },
    }),
    HistoryEvent.create({
      markerRecordedEventAttributes: { details: { result: { payloads: [payload(7)] } } },
    }),
    HistoryEvent.create({
      workflowExecutionContinuedAsNewEventAttributes: { input: { payloads: [payload(4000)] } },
    }),
  ];
  const found = events.map((e) => payloadBlobs(e));
  assert.deepEqual(found[0], [
    { field: 'workflowExecutionStartedEventAttributes.input', bytes: 30 + 2 * META },
    { field: 'workflowExecutionStartedEventAttributes.memo.fields.note', bytes: 5 + META },
    { field: 'workflowExecutionStartedEventAttributes.header.fields.trace', bytes: 3 + META },
  ]);
  assert.deepEqual(found[1], [
    { field: 'workflowExecutionSignaledEventAttributes.input', bytes: 300 + META },
  ]);
  assert.deepEqual(found[2], [{ field: 'markerRecordedEventAttributes.details.result', bytes: 7 + META }]);
  assert.deepEqual(found[3], [
    { field: 'workflowExecutionContinuedAsNewEventAttributes.input', bytes: 4000 + META },
  ]);
  assert.deepEqual(payloadBlobs(HistoryEvent.create({})), []);
});

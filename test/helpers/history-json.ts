// Workflow histories to and from proto JSON, the format of the SDK's historyToJSON().
//
// The SDK's own historyToJSON/historyFromJSON (@temporalio/common/lib/proto-utils), which
// Worker.runReplayHistories also calls on JSON, fail here with "type must be a Type": they hand a
// Type built by @temporalio/proto's copy of protobufjs 8 to the protojson of @temporalio/common's
// copy. npm keeps one copy per package because grpc's protobufjs 7 holds the top of node_modules.
// Both halves are taken from @temporalio/proto's copy here, which holds in any layout.
import { createRequire } from 'node:module';
import proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

export type History = proto.temporal.api.history.v1.IHistory;

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): unknown;
}

const require = createRequire(import.meta.url);
const protojson = createRequire(require.resolve('@temporalio/proto'))(
  'protobufjs/ext/protojson',
) as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

export function historyToJSON(history: History): string {
  const message = proto.temporal.api.history.v1.History.fromObject(history);
  return JSON.stringify(protojson.toJson(historyType, message), null, 2);
}

/** A History message, which replay takes as it is (it converts only JSON, with the SDK's helper). */
export function historyFromJSON(json: unknown): History {
  // Fields of a newer server are skipped, as the SDK does.
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}

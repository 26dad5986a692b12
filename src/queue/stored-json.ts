import { fromWire, toWire, type Domain } from '../domain/schemas/wire.js';
import type {
  TaskRecord,
  WireCallbackState,
  WireEarlyOutput,
  WireTaskOutput,
  WireTaskRequest,
} from '../domain/task.js';

// Stored JSON (SQLite columns, Redis job data and hashes) keeps the wire's snake_case, as the versions before
// the camelCase domain wrote it: a deploy reads the queued and finished tasks of the previous one.

/** A domain value as the store keeps it; name the wire type: `toStored<WireTaskRequest>(request)`. */
export function toStored<W>(value: Domain<W>): string {
  return JSON.stringify(toWire<W>(value));
}

/** What the store kept, as the domain holds it. */
export function fromStored<W>(text: string): Domain<W> {
  return fromWire(JSON.parse(text) as W);
}

/** A whole record as a store keeps it: camelCase around, its request, outputs and callback in wire casing. */
type StoredRecord = Omit<TaskRecord, 'request' | 'output' | 'earlyOutput' | 'callback'> & {
  request: WireTaskRequest;
  output?: WireTaskOutput;
  earlyOutput?: WireEarlyOutput;
  callback?: WireCallbackState;
};

export function recordToStored(record: TaskRecord): string {
  const stored: StoredRecord = {
    ...record,
    request: toWire<WireTaskRequest>(record.request),
    output: record.output && toWire<WireTaskOutput>(record.output),
    earlyOutput: record.earlyOutput && toWire<WireEarlyOutput>(record.earlyOutput),
    callback: record.callback && toWire<WireCallbackState>(record.callback),
  };
  return JSON.stringify(stored);
}

export function recordFromStored(text: string): TaskRecord {
  const stored = JSON.parse(text) as StoredRecord;
  return {
    ...stored,
    request: fromWire(stored.request),
    output: stored.output && fromWire(stored.output),
    earlyOutput: stored.earlyOutput && fromWire(stored.earlyOutput),
    callback: stored.callback && fromWire(stored.callback),
  };
}

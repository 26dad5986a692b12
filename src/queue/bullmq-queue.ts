import type { Logger } from 'pino';
import type { QueueSettings } from '../config/config.js';
import type { TaskQueue } from './task-queue.js';

/** Placeholder until the BullMQ adapter lands. */
export class BullMqTaskQueue {
  constructor(_settings: Extract<QueueSettings, { kind: 'redis' }>, _logger: Logger) {
    throw new Error('QUEUE=redis is not implemented yet');
  }
}
export type _Check = TaskQueue;

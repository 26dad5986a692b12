export type { StatusDocument } from '../../src/api/status-document.js';
import type { StatusDocument } from '../../src/api/status-document.js';

export type TaskOutputView = NonNullable<StatusDocument['output']>;

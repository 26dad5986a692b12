import type { S3Settings } from '../config/config.js';
import type { ObjectInfo, ObjectLocation, PutOptions, Storage } from './storage.js';

/** Placeholder until the S3 adapter lands. */
export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly description: string;
  constructor(settings: S3Settings, _publicBaseUrl?: string) {
    this.description = `s3://${settings.bucket}`;
    throw new Error('S3 storage is not implemented yet');
  }
  head(_key: string): Promise<ObjectInfo | undefined> {
    throw new Error('not implemented');
  }
  download(_key: string, _dest: string): Promise<void> {
    throw new Error('not implemented');
  }
  localPath(): undefined {
    return undefined;
  }
  upload(_key: string, _src: string, _o: PutOptions): Promise<void> {
    throw new Error('not implemented');
  }
  delete(_keys: string[]): Promise<void> {
    throw new Error('not implemented');
  }
  list(_prefix: string): Promise<string[]> {
    throw new Error('not implemented');
  }
  location(key: string): ObjectLocation {
    return { key };
  }
  check(): Promise<void> {
    throw new Error('not implemented');
  }
  async close(): Promise<void> {}
}

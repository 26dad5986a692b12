/**
 * Where inputs are read from and packages are written to. One adapter per backend (local disk, S3); no
 * backend type leaks through this interface. Keys are `/`-separated relative paths already checked by
 * `assertSafeKey`.
 */
export interface Storage {
  /** For logs and the status document: a kind and a location, never a credential. */
  readonly kind: 'local' | 's3';
  readonly description: string;
  /** Size of the object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Streams the object into a local file. Throws TaskFailure('input_not_found') when it does not exist. With
   * `expected.etag` (from `head`), only that version of the object is read: one replaced since fails.
   */
  download(key: string, destPath: string, signal?: AbortSignal, expected?: { etag?: string }): Promise<void>;
  /** A local path to read the object in place, when the backend is a local disk; undefined otherwise. */
  localPath(key: string): string | undefined;
  upload(key: string, srcPath: string, options: PutOptions): Promise<void>;
  /** Deletes the keys; keys that do not exist are ignored. */
  delete(keys: string[]): Promise<void>;
  /** Every key under the prefix. */
  list(prefix: string): Promise<string[]>;
  /** Where an object is, for the status document. */
  location(key: string): ObjectLocation;
  /** Throws when the storage cannot be reached or used (readiness). */
  check(): Promise<void>;
  /** A URL a client can PUT a new object to, when the backend supports presigning. */
  createUploadUrl?(key: string, contentType: string, expiresInSeconds: number): Promise<string>;
  close(): Promise<void>;
}

export interface ObjectInfo {
  size: number;
  /** The version of the object, where the backend tells (S3's ETag). */
  etag?: string;
}

export interface PutOptions {
  contentType: string;
  cacheControl?: string;
  /** Stops the upload midway (a cancelled task); the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ObjectLocation {
  key: string;
  bucket?: string;
  /** Public URL when PUBLIC_BASE_URL is configured. */
  url?: string;
}

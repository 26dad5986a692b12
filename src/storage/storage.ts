/**
 * Where inputs are read and packages written: one adapter per backend, none of whose types leak through.
 * Keys are `/`-separated relative paths already checked by `assertSafeKey`.
 */
export interface Storage {
  /** For logs: where it is, never a credential. */
  readonly description: string;
  /**
   * Objects as files on this host, when the backend is a local disk: callers ask for the capability, they
   * never test for a backend.
   */
  readonly localFiles?: LocalFiles;
  /** Size of the object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Streams the object into a local file. Throws TaskFailure('input_not_found') when it does not exist. With
   * `expected.etag` (from `head`), only that version of the object is read: one replaced since fails.
   */
  download(key: string, destPath: string, signal?: AbortSignal, expected?: { etag?: string }): Promise<void>;
  upload(key: string, srcPath: string, options: PutOptions): Promise<void>;
  /** Deletes the keys; keys that do not exist are ignored. */
  delete(keys: string[]): Promise<void>;
  /** Every key under the prefix. */
  list(prefix: string): Promise<string[]>;
  /** Where an object is, for the status document. */
  location(key: string): ObjectLocation;
  /** Where a package's prefix is, for the status document. */
  place(prefix: string): StoragePlace;
  /** Throws when the storage cannot be reached or used (readiness). */
  check(): Promise<void>;
  /** A URL a client can PUT a new object to, when the backend supports presigning. */
  createUploadUrl?(key: string, contentType: string, expiresInSeconds: number): Promise<string>;
  /**
   * A URL that reads the object (byte ranges included) for `expiresInSeconds`, when the backend presigns: a
   * split task's chunk jobs give it to FFmpeg, which reads only the ranges it needs.
   */
  createDownloadUrl?(key: string, expiresInSeconds: number): Promise<string>;
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

export interface LocalFiles {
  /** The file of a key, to read or write in place; refuses a key that would resolve outside the root. */
  pathOf(key: string): string;
  /**
   * Removes `.part` files below `prefix` (`''`: everywhere) untouched for `olderThanMs`, or for what it
   * answers for the part's key (some writes are over in milliseconds). Returns how many it removed.
   */
  removeStalePartials(prefix: string, olderThanMs: number | ((key: string) => number)): Promise<number>;
}

export interface StoragePlace {
  storage: 'local' | 's3';
  bucket?: string;
  prefix: string;
}

/** What each storage adapter needs; `config/` builds them from the environment. */
export interface S3Settings {
  bucket: string;
  region: string;
  endpoint?: string;
  /**
   * The store's address as clients outside the service's network reach it (S3_PUBLIC_ENDPOINT): presigned
   * upload URLs are signed for it. Absent: the endpoint itself.
   */
  publicEndpoint?: string;
  forcePathStyle: boolean;
  /** Absent: the SDK's default credential chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts: number;
}

export type StorageSettings = { kind: 'local'; root: string } | ({ kind: 's3' } & S3Settings);

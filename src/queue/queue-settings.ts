/** What each queue adapter needs; `config/` builds them from the environment. */
export type QueueSettings =
  | { kind: 'sqlite'; path: string; leaseMs: number; maxAttempts: number }
  | {
      kind: 'redis';
      url: string;
      prefix: string;
      maxAttempts: number;
      retentionSeconds: number;
      /** A task whose worker stops renewing its lock for this long is taken as stalled and run again. */
      leaseMs: number;
    };

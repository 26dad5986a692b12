const KEY_STORAGE = 'dvc.apiKey';

/** An answer of the API that was not a success, with the API's own error code and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An API key as an HTTP header can carry it (printable ASCII), or null. */
export function sendableKey(key: string | null): string | null {
  return key && /^[\x21-\x7e]+$/.test(key) ? key : null;
}

/**
 * Calls to the service's API from the page. The API key, when the service asks for one, travels in the
 * X-API-Key header only, and is kept in this tab's session storage.
 */
export class Api {
  // A key no header can carry (stored by an earlier version of the page) is dropped: the page asks again.
  private key: string | null = sendableKey(sessionStorage.getItem(KEY_STORAGE));
  /** Called when the API answered 401: the page asks for a key. */
  onUnauthorized: () => void = () => undefined;

  headers(): Record<string, string> {
    return this.key ? { 'x-api-key': this.key } : {};
  }

  setKey(key: string): void {
    this.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
  }

  /** True for a URL this page's key may be sent to: never to another origin (a bucket, a CDN). */
  isOwn(url: string): boolean {
    return new URL(url, location.href).origin === location.origin;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { ...this.headers(), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return this.read<T>(res);
  }

  async read<T>(res: Response): Promise<T> {
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw this.error(res.status, parsed);
    return parsed as T;
  }

  error(status: number, body: unknown): HttpError {
    if (status === 401) this.onUnauthorized();
    const b = (body ?? {}) as { error?: string; message?: string };
    return new HttpError(status, b.error ?? 'http_error', b.message ?? `the service answered HTTP ${status}`);
  }

  /** A URL for an <img>: the same URL when no key is needed, else the image fetched with the key. */
  async imageUrl(url: string): Promise<string> {
    if (!this.key || !this.isOwn(url)) return url;
    const res = await fetch(url, { headers: this.headers() });
    if (!res.ok) throw this.error(res.status, undefined);
    return URL.createObjectURL(await res.blob());
  }
}

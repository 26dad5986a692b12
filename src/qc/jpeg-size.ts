import { open } from 'node:fs/promises';

/** How much of a JPEG is read for its frame header: it comes after the tables, well within this. */
const HEAD_BYTES = 64 * 1024;

/** A JPEG's width and height from its frame header (SOFn); undefined when the file is not a readable JPEG. */
export async function jpegSize(file: string): Promise<{ width: number; height: number } | undefined> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buf, 0, HEAD_BYTES, 0);
    return jpegSizeOf(buf.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

export function jpegSizeOf(buf: Buffer): { width: number; height: number } | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 4 <= buf.length) {
    if (buf[at] !== 0xff) return undefined;
    const marker = buf[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = buf.readUInt16BE(at + 2);
    // SOF0–SOF15 but DHT (C4), JPG (C8) and DAC (CC): height, then width, after the sample precision.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > buf.length) return undefined;
      return { height: buf.readUInt16BE(at + 5), width: buf.readUInt16BE(at + 7) };
    }
    at += 2 + length;
  }
  return undefined;
}

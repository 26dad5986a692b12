import { open, type FileHandle } from 'node:fs/promises';
import { TaskFailure } from '../domain/failures.js';

/** Top-level boxes walked at most: enough for any real file, bounded for a hostile one. */
const MAX_BOXES = 10_000;
/** Boxes that hold samples or their index: one cut short means the upload is incomplete. */
const mediaBoxes = new Set(['mdat', 'moov', 'moof']);

/**
 * Fails an upload cut short (MP4/MOV boxes, Matroska/WebM segment, AVI RIFF longer than the file): FFmpeg
 * encodes what is there without an error. Containers that do not say their length (MPEG-TS, FLV…) pass.
 */
export async function assertComplete(inputPath: string, formatName: string): Promise<void> {
  const file = await open(inputPath, 'r');
  try {
    const { size } = await file.stat();
    const format = formatName.split(',')[0];
    const missing =
      format === 'mov'
        ? await isoBmffShortfall(file, size)
        : format === 'matroska'
          ? await ebmlShortfall(file, size)
          : format === 'avi'
            ? await riffShortfall(file, size)
            : 0;
    if (missing > 0) {
      throw new TaskFailure(
        'invalid_input',
        `the input is truncated: its container describes ${missing} bytes more than the file holds (an incomplete upload?)`,
      );
    }
  } finally {
    await file.close();
  }
}

async function read(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await file.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

/** Bytes by which the last top-level box (`mdat` of a cut file) runs past the end of the file. */
async function isoBmffShortfall(file: FileHandle, fileSize: number): Promise<number> {
  let offset = 0;
  for (let n = 0; n < MAX_BOXES && offset + 8 <= fileSize; n++) {
    const head = await read(file, offset, 16);
    let boxSize = head.readUInt32BE(0);
    if (boxSize === 0) return 0; // the box runs to the end of the file, by definition
    if (boxSize === 1) {
      if (head.length < 16) return 0;
      boxSize = Number(head.readBigUInt64BE(8));
    }
    if (boxSize < 8) return 0; // not a box structure FFmpeg accepted; leave the verdict to it
    // Only a media or index box counts: some writers leave a few stray bytes after the last box.
    if (offset + boxSize > fileSize) {
      return mediaBoxes.has(head.toString('latin1', 4, 8)) ? offset + boxSize - fileSize : 0;
    }
    offset += boxSize;
  }
  return 0;
}

/**
 * Bytes by which the last RIFF chunk of an AVI runs past the end of the file. Files over 1 GiB (OpenDML)
 * chain `RIFF AVIX` chunks after the first; each is padded to an even size.
 */
async function riffShortfall(file: FileHandle, fileSize: number): Promise<number> {
  let offset = 0;
  for (let n = 0; n < MAX_BOXES && offset + 8 <= fileSize; n++) {
    const head = await read(file, offset, 8);
    if (head.toString('latin1', 0, 4) !== 'RIFF') return 0;
    const end = offset + 8 + head.readUInt32LE(4);
    if (end > fileSize) return end - fileSize;
    offset = end + (end % 2);
  }
  return 0;
}

/** Bytes by which a Matroska segment of known size runs past the end of the file. */
async function ebmlShortfall(file: FileHandle, fileSize: number): Promise<number> {
  const head = await read(file, 0, 4096);
  let pos = 0;
  const element = () => {
    const id = vint(head, pos, false);
    if (!id) return undefined;
    const size = vint(head, pos + id.length, true);
    if (!size) return undefined;
    const start = pos + id.length + size.length;
    return { id: id.value, size: size.value, start };
  };
  const ebml = element();
  if (!ebml || ebml.id !== 0x1a45dfa3 || ebml.size === undefined) return 0;
  pos = ebml.start + ebml.size;
  const segment = element();
  if (!segment || segment.id !== 0x18538067 || segment.size === undefined) return 0;
  return Math.max(0, segment.start + segment.size - fileSize);
}

/**
 * An EBML variable-length integer at `pos`: its length in bytes and value (the marker bit removed for sizes;
 * `undefined` value for the reserved "unknown size").
 */
function vint(buf: Buffer, pos: number, isSize: boolean): { length: number; value?: number } | undefined {
  const first = buf[pos];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (pos + length > buf.length) return undefined;
  let value = isSize ? first & (0xff >> length) : first;
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[pos + i]!;
    value = value * 256 + b;
    allOnes &&= b === 0xff;
  }
  return { length, value: isSize && allOnes ? undefined : value };
}

/**
 * Tar (POSIX ustar) headers for the get command, which answers a tar stream
 * as Kubo does. Only what get writes: directories and regular files, a PAX
 * header first when a path is longer than the header's 100 bytes.
 */
const BLOCK = 512;
/** An ustar size field holds 11 octal digits. */
const MAX_SIZE = 8 ** 11 - 1;

export type TarEntryType = "file" | "directory";

/** The header block(s) of one entry; a file's bytes follow, then tarPadding(size). */
export function tarHeader(path: string, type: TarEntryType, size: number): Uint8Array {
  if (size > MAX_SIZE) throw new RangeError(`${path} is ${size} bytes, more than a tar entry holds (${MAX_SIZE})`);
  const name = type === "directory" ? `${path}/` : path;
  const nameBytes = Buffer.from(name, "utf8");
  if (nameBytes.byteLength <= 100) return ustarBlock(nameBytes, type === "directory" ? "5" : "0", size, type === "directory" ? 0o755 : 0o644);
  // The name does not fit: a PAX "path" record carries it, the ustar header a truncated one.
  const record = paxRecord("path", name);
  return Buffer.concat([
    ustarBlock(Buffer.from("PaxHeader", "utf8"), "x", record.byteLength, 0o644),
    record,
    tarPadding(record.byteLength),
    ustarBlock(nameBytes.subarray(0, 100), type === "directory" ? "5" : "0", size, type === "directory" ? 0o755 : 0o644),
  ]);
}

/** Zero bytes that bring an entry of `size` bytes to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end of an archive: two zero blocks. */
export function tarEnd(): Uint8Array {
  return new Uint8Array(2 * BLOCK);
}

/** "<length> key=value\n", where length counts the whole record, its own digits too. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body, "utf8");
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength;
  return Buffer.from(`${length}${body}`, "utf8");
}

function ustarBlock(name: Uint8Array, typeflag: string, size: number, mode: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.set(name, 0);
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, 0); // mtime: UnixFS here carries none
  block.write(typeflag, 156, "ascii");
  block.write("ustar\u0000", 257, "ascii");
  block.write("00", 263, "ascii");
  // The checksum is computed with its own field as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "ascii");
  return block;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, "0")}\u0000`, offset, "ascii");
}
